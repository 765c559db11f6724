"""The rule every fuzz harness checks, and the counting wrapper that reports what it tried.

A parser of untrusted input either returns a result or raises a :class:`VisionloopError` with a
message; any other exception escaping it (``KeyError``, ``TypeError``, ``RecursionError``...) is
a bug the harness reports with the input hypothesis found.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from hardening_tally import tally
from visionloop.core.errors import VisionloopError

T = TypeVar("T")
PROFILES = ("brief", "long")


def profile() -> str:
    """The hypothesis profile ``VISIONLOOP_FUZZ`` names (``brief`` unless set)."""
    name = os.environ.get("VISIONLOOP_FUZZ", "brief")
    if name not in PROFILES:
        raise ValueError(f"VISIONLOOP_FUZZ must be one of {PROFILES}, got {name!r}")
    return name


def returns_or_refuses(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``call``'s result, or ``None`` when it refused the input with a project error that says why."""
    try:
        return call(*args, **kwargs)
    except VisionloopError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


def fuzz_test(scale: float = 1.0) -> Callable[[Callable[[st.DataObject], None]], Callable[[], None]]:
    """Turn ``body(data)`` (which draws its input from ``data``) into a pytest test running it under
    the chosen profile; the number of examples run is added to the hardening tally as
    "fuzz inputs tried".

    ``scale`` multiplies the profile's example count: harnesses of decoders that take
    microseconds run more examples in the time one format load takes.
    """

    def wrap(body: Callable[[st.DataObject], None]) -> Callable[[], None]:
        def test() -> None:
            chosen = settings.get_profile(profile())
            tried = 0

            @settings(chosen, max_examples=max(1, int(chosen.max_examples * scale)))
            @given(st.data())
            def example(data: st.DataObject) -> None:
                nonlocal tried
                tried += 1
                body(data)

            try:
                example()
            finally:  # a failing run still reports what it tried
                tally("fuzz inputs tried", tried)

        test.__name__ = test.__qualname__ = body.__name__
        test.__doc__ = body.__doc__
        test.__module__ = body.__module__
        return test

    return wrap
