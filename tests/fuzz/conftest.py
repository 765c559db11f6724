"""Hypothesis profiles for the fuzz harnesses, picked by ``VISIONLOOP_FUZZ``.

``brief`` (the default, what ``make test`` runs) keeps every harness together under a minute on
a small machine and is derandomized, so a CI failure reproduces; ``long`` (``make fuzz``) tries
50 times more inputs with no deadline and keeps its findings in the example database.

The profiles are only registered here, not loaded: loading one would change the settings of
every other hypothesis test in the run. Harnesses apply the chosen one (see ``harness.py``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

BRIEF_EXAMPLES = 40
LONG_FACTOR = 50
_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "brief",
    max_examples=BRIEF_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_CHECKS,
)
settings.register_profile(
    "long",
    max_examples=BRIEF_EXAMPLES * LONG_FACTOR,
    deadline=None,
    database=DirectoryBasedExampleDatabase(".hypothesis/fuzz"),
    suppress_health_check=_SLOW_CHECKS,
)
