"""Hostile strings: path traversal in every encoding, absolute and UNC paths, URLs, NUL bytes,
huge names and tricky Unicode, for every place a name or reference comes from a user.

``TRAVERSALS`` try to leave a folder; ``UNICODE_NAMES`` are legitimate but unusual names that
must round-trip unchanged where a name is allowed at all.
"""

from __future__ import annotations

import unicodedata

TRAVERSALS: tuple[str, ...] = (
    "../secret.png",
    "../../secret.png",
    "a/../../secret.png",
    "..\\secret.png",
    "a\\..\\..\\secret.png",
    "%2e%2e%2fsecret.png",
    "%2e%2e/secret.png",
    "..%2fsecret.png",
    "%252e%252e%252fsecret.png",
    "%25252e%25252e%25252fsecret.png",
    "..%c0%afsecret.png",
    "..%ef%bc%8fsecret.png",
    "．．／secret.png",
    "..／secret.png",
    "..\u2215secret.png",
    "....//....//secret.png",
    "..;/secret.png",
    "./../secret.png",
    "docs/\x00../secret.png",
    "secret.png\x00.jpg",
    "/etc/passwd",
    "//etc/passwd",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "c:secret.png",
    "\\\\server\\share\\secret.png",
    "//server/share/secret.png",
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "~/.ssh/id_rsa",
    "$HOME/secret.png",
)

UNICODE_NAMES: tuple[str, ...] = (
    "photo\u202egnp.exe",  # right-to-left override
    "cafe\u0301",  # NFD: e + combining acute
    "caf\u00e9",  # NFC
    "\U0001f431\U0001f436",  # emoji
    "zero\u200bwidth\u200d",  # zero-width space and joiner
    "z\u0351\u0352\u0353\u0354\u0355\u0356a\u0357\u0358lgo",  # stacked combining marks
    "日本語の画像",
    "\ufeffbom",
    "tab\tand newline\n",
    "quote'\"<script>",
)

#: Names far past any file-name limit (255 bytes on common file systems).
HUGE_NAMES: tuple[str, ...] = ("a" * 10_000, "é" * 5_000, "../" * 3_000 + "secret.png")

HOSTILE: tuple[str, ...] = TRAVERSALS + UNICODE_NAMES + HUGE_NAMES


def nfc_and_nfd_differ() -> tuple[str, str]:
    """The same visible name in two normal forms (distinct files on Linux)."""
    name = "caf\u00e9"
    return unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)
