"""The security gate of ``make test``: bandit plus the project's own AST rules over the source,
with every accepted finding reviewed in ``allowlist.toml``.

Bandit covers the generic cases; the VL rules below cover what the project promises in
DESIGN.md (no unpickling, safe YAML and XML, our own archive extraction) in forms bandit does
not check, such as ``torch.load`` without ``weights_only=True``. Every rule is shown to fire on
a tiny bad snippet, so the gate cannot pass by checking nothing.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardening_tally import tally

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src/visionloop", "scripts", "bench")
ALLOWLIST = Path(__file__).with_name("allowlist.toml")


@dataclass(frozen=True)
class Finding:
    file: str
    test: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.test} {self.text}"


# --- the project's own rules -------------------------------------------------------------------

UNPICKLING_MODULES = ("pickle", "cPickle", "_pickle", "cloudpickle", "marshal", "shelve", "dill", "joblib")
XML_MODULES = ("xml.etree", "xml.dom", "xml.sax", "xml.parsers", "lxml")
XML_PARSERS = {"parse", "fromstring", "fromstringlist", "iterparse", "XML", "XMLParser", "XMLPullParser"}
XML_PARSERS |= {"parseString", "make_parser", "ParserCreate"}
SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}

RULES = {
    "VL101": "torch.load without weights_only=True unpickles arbitrary objects",
    "VL102": "numpy.load with allow_pickle other than False unpickles object arrays",
    "VL103": "yaml.load/full_load/unsafe_load without a safe loader builds arbitrary objects",
    "VL104": "a module that unpickles (pickle, cloudpickle, marshal, shelve, dill, joblib) is imported",
    "VL105": "stdlib XML or lxml is imported instead of defusedxml",
    "VL106": "XML is parsed with the stdlib or lxml instead of defusedxml",
    "VL107": "eval, exec or compile runs code built at run time",
    "VL108": "a shell runs a command string (shell=True, os.system, os.popen)",
    "VL109": "an archive is extracted without formats.safeio's checks (extractall, unpack_archive)",
}


def _is_within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


class _Scanner(ast.NodeVisitor):
    """Finds the VL patterns in one module, resolving import aliases (``np`` is ``numpy``)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.names: dict[str, str] = {}
        self.findings: list[Finding] = []

    def _add(self, rule: str, node: ast.AST) -> None:
        self.findings.append(Finding(self.file, rule, getattr(node, "lineno", 0), RULES[rule]))

    def _imported(self, module: str, node: ast.AST) -> None:
        if _is_within(module, UNPICKLING_MODULES):
            self._add("VL104", node)
        if _is_within(module, XML_MODULES):
            self._add("VL105", node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._imported(alias.name, node)
            if alias.asname:
                self.names[alias.asname] = alias.name
            else:
                top = alias.name.split(".", 1)[0]
                self.names[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self._imported(f"{module}.{alias.name}" if module else alias.name, node)
            self.names[alias.asname or alias.name] = f"{module}.{alias.name}"

    def _dotted(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_Call(self, node: ast.Call) -> None:
        name = self._dotted(node.func) or ""
        keywords = {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
        if name == "torch.load" and not _is_constant(keywords.get("weights_only"), True):
            self._add("VL101", node)
        pickles = keywords.get("allow_pickle")
        if name in ("numpy.load", "np.load") and pickles is not None and not _is_constant(pickles, False):
            self._add("VL102", node)
        if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
            self._add("VL103", node)
        if name in ("yaml.load", "yaml.load_all"):
            loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
            if loader is None or self._dotted(loader) not in SAFE_YAML_LOADERS:
                self._add("VL103", node)
        if _is_within(name, XML_MODULES) and name.rsplit(".", 1)[-1] in XML_PARSERS:
            self._add("VL106", node)
        builtin = isinstance(node.func, ast.Name) and node.func.id not in self.names  # not imported
        if builtin and name in ("eval", "exec", "compile"):
            self._add("VL107", node)
        shell = keywords.get("shell")
        if (shell is not None and not _is_constant(shell, False)) or name in ("os.system", "os.popen"):
            self._add("VL108", node)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if method == "extractall" or name == "shutil.unpack_archive":
            self._add("VL109", node)
        self.generic_visit(node)


def _is_constant(node: ast.expr | None, value: bool) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def scan_source(source: str, file: str = "<snippet>") -> list[Finding]:
    """The VL findings in one module's source."""
    scanner = _Scanner(file)
    scanner.visit(ast.parse(source, filename=file))
    return scanner.findings


# --- running the gate --------------------------------------------------------------------------


def _python_files() -> Iterator[Path]:
    for folder in SCANNED:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _allowlist() -> dict[str, list[dict[str, str]]]:
    with ALLOWLIST.open("rb") as handle:
        return tomllib.load(handle)


def run_bandit(paths: list[str], skips: list[str], cwd: Path) -> list[Finding]:
    """Bandit's findings of every severity and confidence; inline ``# nosec`` waivers are
    ignored, so the allowlist stays the one record of what was reviewed."""
    command = [sys.executable, "-m", "bandit", "-q", "-r", "-f", "json", "--ignore-nosec", *paths]
    if skips:
        command += ["-s", ",".join(skips)]
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(completed.stdout)
    assert report["errors"] == [], f"bandit could not scan: {report['errors']}"
    return [
        Finding(result["filename"], result["test_id"], result["line_number"], result["issue_text"])
        for result in report["results"]
    ]


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    skips = [entry["test"] for entry in _allowlist().get("skip", [])]
    found = run_bandit(list(SCANNED), skips, ROOT)
    files = list(_python_files())
    for path in files:
        found += scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    tally("source files scanned", len(files))
    return found


def test_every_finding_is_reviewed_in_the_allowlist(findings: list[Finding]) -> None:
    allowed = {(entry["file"], entry["test"]) for entry in _allowlist().get("allow", [])}
    unreviewed = [str(finding) for finding in findings if (finding.file, finding.test) not in allowed]
    assert not unreviewed, (
        "security findings not in tests/security/allowlist.toml (fix them, or add an entry with a "
        "reviewed reason):\n" + "\n".join(unreviewed)
    )


def test_the_allowlist_has_no_stale_or_unexplained_entries(findings: list[Finding]) -> None:
    matched = {(finding.file, finding.test) for finding in findings}
    entries = _allowlist()
    for entry in [*entries.get("allow", []), *entries.get("skip", [])]:
        assert len(entry.get("reason", "").strip()) >= 20, f"{entry}: give the reviewed reason"
    stale = [entry for entry in entries.get("allow", []) if (entry["file"], entry["test"]) not in matched]
    assert not stale, f"allowlist entries that match nothing any more (remove them): {stale}"
    pairs = [(entry["file"], entry["test"]) for entry in entries.get("allow", [])]
    assert len(pairs) == len(set(pairs)), "duplicate allowlist entries"


# --- every rule fires ----------------------------------------------------------------------------

BAD = {
    "VL101": ["import torch\ntorch.load(p)", "from torch import load\nload(p, weights_only=False)"],
    "VL102": [
        "import numpy as np\nnp.load(p, allow_pickle=True)",
        "import numpy\nnumpy.load(p, allow_pickle=x)",
    ],
    "VL103": [
        "import yaml\nyaml.load(text)",
        "import yaml\nyaml.load(text, Loader=yaml.Loader)",
        "import yaml\nyaml.unsafe_load(text)",
        "import yaml as y\ny.full_load(text)",
    ],
    "VL104": [
        "import pickle",
        "import cloudpickle as cp",
        "from marshal import loads",
        "import shelve, dill",
    ],
    "VL105": ["import xml.etree.ElementTree as ET", "from xml.dom import minidom", "from lxml import etree"],
    "VL106": [
        "import xml.etree.ElementTree as ET\nET.fromstring(data)",
        "from xml.dom import minidom\nminidom.parseString(data)",
        "from xml.etree.ElementTree import parse\nparse(path)",
        "from lxml import etree\netree.parse(path)",
    ],
    "VL107": ["eval(text)", "exec(code)", "compile(text, 'x', 'exec')"],
    "VL108": [
        "import subprocess\nsubprocess.run(cmd, shell=True)",
        "import subprocess as sp\nsp.Popen(cmd, shell=flag)",
        "import os\nos.system(cmd)",
    ],
    "VL109": [
        "import tarfile\ntarfile.open(p).extractall(out)",
        "import zipfile\nzipfile.ZipFile(p).extractall(out)",
        "import shutil\nshutil.unpack_archive(p, out)",
    ],
}
GOOD = [
    "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
    "import numpy as np\nnp.load(p)\nnp.load(p, allow_pickle=False)",
    "import yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)",
    "from defusedxml import ElementTree\nElementTree.fromstring(data)",
    "model.eval()\nimport re\nre.compile('x')",
    "import subprocess\nsubprocess.run(['ls'], shell=False, check=True)",
    "from visionloop.formats.safeio import extract\nextract(p)",
]


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_fires_on_its_pattern(rule: str) -> None:
    snippets = BAD[rule]
    for snippet in snippets:
        assert rule in {finding.test for finding in scan_source(snippet)}, f"{rule} missed:\n{snippet}"
    tally("security rules checked")


@pytest.mark.parametrize("snippet", GOOD)
def test_safe_forms_pass(snippet: str) -> None:
    assert scan_source(snippet) == []


def test_bandit_itself_fires_and_ignores_nosec(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import pickle\nimport subprocess\n"
        "pickle.loads(data)  # nosec\nsubprocess.call(cmd, shell=True)  # nosec\n",
        encoding="utf-8",
    )
    found = {finding.test for finding in run_bandit(["bad.py"], [], tmp_path)}
    assert {"B301", "B403", "B602"} <= found


def test_allowlisted_rules_are_known() -> None:
    bandit_ids = {entry["test"] for entry in _allowlist().get("allow", []) if entry["test"].startswith("B")}
    own_ids = {entry["test"] for entry in _allowlist().get("allow", []) if not entry["test"].startswith("B")}
    assert own_ids <= set(RULES)
    assert all(len(test) == 4 and test[1:].isdigit() for test in bandit_ids)
