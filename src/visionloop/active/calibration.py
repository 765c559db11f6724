"""Score thresholds for auto-accepting model labels, with a statistical guarantee.

The question auto-labeling must answer is not "is this score high?" but "if we accept every
label scoring at least ``t``, how wrong can the accepted set be?". We answer it on items that
humans labelled and the model never trained on (the calibration set):

* For a candidate threshold ``t``, the accepted calibration items are those scoring ``>= t``;
  ``n`` of them, ``e`` wrong. The Clopper-Pearson upper bound ``U(e, n, delta)`` on the true error
  rate holds with probability ``1 - delta`` (exact binomial, no normal approximation).
* The candidates are the thresholds that accept 2%, 4%, ..., 100% of the calibration items
  (``COVERAGE_STEPS``). They are tested in that order, each at the full ``delta``, and testing
  stops at the first failure: fixed-sequence testing, which Learn-then-Test (Angelopoulos et al.
  2021) uses for risks that grow as the threshold falls, and which needs no Bonferroni split.
  The first candidate tested is the one accepting ``START_MULTIPLE`` times the fewest items
  that could pass at all, or half the calibration set when that is fewer (decided from counts
  alone, never from errors), so the sequence does not stop on one unlucky error among a handful
  of top items. Per-class thresholds split
  ``delta`` between the classes (Bonferroni), so that all of them hold together.
* When even a perfect calibration set is too small to certify the target, nothing is accepted
  and :func:`labels_needed` says how many correct items it would take.

The bound covers items drawn like the calibration items (same distribution). A random audit of
accepted items, checked by humans, tests that assumption later (:func:`audit_verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError

__all__ = [
    "AuditVerdict",
    "Calibration",
    "ClassThreshold",
    "audit_verdict",
    "calibrate_thresholds",
    "clopper_pearson_upper",
    "labels_needed",
    "risk_coverage",
]

_BISECTION_STEPS = 60
# Candidate thresholds accept 1/50, 2/50, ... of the calibration items, tested in that order.
COVERAGE_STEPS = 50
# Testing starts where a set of this many times the minimum certifiable size is accepted.
START_MULTIPLE = 5


def _log_factorials(n: int) -> npt.NDArray[np.float64]:
    """``log(k!)`` for ``k = 0..n``."""
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def _binomial_cdf(errors: int, n: int, p: float, log_fact: npt.NDArray[np.float64]) -> float:
    """P(X <= errors) for X ~ Binomial(n, p), summed in log space (stable for large n)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if errors >= n else 0.0
    k = np.arange(errors + 1)
    log_terms = log_fact[n] - log_fact[k] - log_fact[n - k] + k * math.log(p) + (n - k) * math.log1p(-p)
    top = float(log_terms.max())
    return min(1.0, float(math.exp(top) * np.exp(log_terms - top).sum()))


def _within(errors: int, n: int, allowed: float, delta: float, log_fact: npt.NDArray[np.float64]) -> bool:
    """``clopper_pearson_upper(errors, n, delta) <= allowed``, decided with one CDF evaluation."""
    return errors <= allowed * n and _binomial_cdf(errors, n, allowed, log_fact) <= delta


def clopper_pearson_upper(errors: int, n: int, delta: float) -> float:
    """The exact one-sided ``1 - delta`` upper confidence bound on a binomial error rate."""
    if n <= 0:
        return 1.0
    if not 0 <= errors <= n:
        raise ValidationError(f"errors must lie in [0, n], got {errors} of {n}")
    if errors == n:
        return 1.0
    if errors == 0:
        return float(1.0 - delta ** (1.0 / n))  # closed form: (1 - p)^n = delta
    log_fact = _log_factorials(n)
    low, high = errors / n, 1.0
    for _ in range(_BISECTION_STEPS):  # the CDF falls as p rises: find P(X <= e; p) = delta
        middle = (low + high) / 2
        if _binomial_cdf(errors, n, middle, log_fact) > delta:
            low = middle
        else:
            high = middle
    return high


def labels_needed(target_accuracy: float, delta: float) -> int:
    """The fewest calibration items that can certify ``target_accuracy`` (when all are right)."""
    allowed = 1.0 - target_accuracy
    return max(1, math.ceil(math.log(delta) / math.log1p(-allowed)))


@dataclass(frozen=True)
class ClassThreshold:
    """One group's certified threshold (``None``: nothing may be auto-accepted) and its evidence."""

    group: str | None  # class name, or None for a global threshold
    threshold: float | None
    calibration_items: int
    accepted_items: int
    accepted_errors: int
    error_bound: float | None
    coverage: float  # fraction of this group's calibration items at or above the threshold
    reason: str = ""
    more_needed: int = 0  # calibration items still missing before the target can be certified


@dataclass(frozen=True)
class Calibration:
    target_accuracy: float
    confidence: float
    per_class: bool
    thresholds: dict[str | None, ClassThreshold] = field(default_factory=dict)

    def threshold_for(self, group: str | None) -> float | None:
        entry = self.thresholds.get(group if self.per_class else None)
        return None if entry is None else entry.threshold

    def accepts(self, group: str | None, score: float) -> bool:
        threshold = self.threshold_for(group)
        return threshold is not None and score >= threshold


def _ranked(
    scores: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Scores from the highest down, and the errors among the first ``n`` for each ``n``."""
    order = np.argsort(-scores, kind="stable")
    errors: npt.NDArray[np.int64] = np.cumsum(~correct[order])
    return scores[order], errors


def _certify(
    scores: npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    allowed_error: float,
    delta: float,
    group: str | None,
) -> ClassThreshold:
    """Fixed-sequence testing down the coverage grid, each test at ``delta``: the lowest threshold
    reached before the first failure."""
    total = len(scores)
    minimum = labels_needed(1.0 - allowed_error, delta)
    if total < minimum:
        reason = (
            f"{total} calibration items; at least {minimum} are needed to certify the target "
            f"({minimum - total} more)"
        )
        return _refused(group, total, reason, more_needed=minimum - total)
    sorted_scores, errors = _ranked(scores, correct)
    log_fact = _log_factorials(total)
    start = min(START_MULTIPLE * minimum, max(minimum, total // 2))
    best: ClassThreshold | None = None
    for step in range(1, COVERAGE_STEPS + 1):
        wanted = math.ceil(total * step / COVERAGE_STEPS)
        if wanted < start and step < COVERAGE_STEPS:
            continue  # counts only: too small a set to be worth a test
        threshold = float(sorted_scores[wanted - 1])
        n = int(np.searchsorted(-sorted_scores, -threshold, side="right"))  # ties are accepted too
        e = int(errors[n - 1])
        if not _within(e, n, allowed_error, delta, log_fact):
            break
        best = ClassThreshold(group, threshold, total, n, e, clopper_pearson_upper(e, n, delta), n / total)
    if best is None:
        return _refused(
            group,
            total,
            "even the most confident calibration items are wrong too often to certify the target",
        )
    return best


def _refused(group: str | None, total: int, reason: str, more_needed: int = 0) -> ClassThreshold:
    return ClassThreshold(group, None, total, 0, 0, None, 0.0, reason, more_needed)


def calibrate_thresholds(
    scores: Sequence[float] | npt.NDArray[np.float64],
    correct: Sequence[bool] | npt.NDArray[np.bool_],
    *,
    target_accuracy: float = 0.95,
    confidence: float = 0.95,
    groups: Sequence[str] | None = None,
) -> Calibration:
    """Certify thresholds on calibration items: ``scores`` (higher = surer), whether each model
    label was ``correct`` against its human label, and optionally the ``groups`` (predicted
    class) for per-class thresholds."""
    if not 0.0 < target_accuracy < 1.0:
        raise ValidationError(f"target accuracy must lie strictly between 0 and 1, got {target_accuracy}")
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    score_array = np.asarray(scores, dtype=np.float64)
    correct_array = np.asarray(correct, dtype=bool)
    if score_array.shape != correct_array.shape or score_array.ndim != 1:
        raise ValidationError("scores and correct must be equally long 1-D sequences")
    if not np.all(np.isfinite(score_array)):
        raise ValidationError("calibration scores must be finite")
    allowed = 1.0 - target_accuracy
    if groups is None:
        entry = _certify(score_array, correct_array, allowed, 1.0 - confidence, None)
        return Calibration(target_accuracy, confidence, False, {None: entry})
    group_array = np.asarray(list(groups), dtype=object)
    if group_array.shape != score_array.shape:
        raise ValidationError("groups must have one entry per calibration item")
    names = sorted({str(name) for name in group_array.tolist()})
    delta = (1.0 - confidence) / max(1, len(names))  # Bonferroni over the classes
    thresholds: dict[str | None, ClassThreshold] = {}
    for name in names:
        chosen = group_array == name
        thresholds[name] = _certify(score_array[chosen], correct_array[chosen], allowed, delta, name)
    return Calibration(target_accuracy, confidence, True, thresholds)


def risk_coverage(
    scores: Sequence[float] | npt.NDArray[np.float64],
    correct: Sequence[bool] | npt.NDArray[np.bool_],
    confidence: float = 0.95,
    points: int = COVERAGE_STEPS,
) -> list[dict[str, float]]:
    """The calibration set's risk-coverage curve: for each share of items accepted from the top
    score down, the threshold, the observed error and its Clopper-Pearson upper bound."""
    score_array = np.asarray(scores, dtype=np.float64)
    correct_array = np.asarray(correct, dtype=bool)
    total = len(score_array)
    if total == 0:
        return []
    sorted_scores, errors = _ranked(score_array, correct_array)
    curve: list[dict[str, float]] = []
    for step in range(1, points + 1):
        n = math.ceil(total * step / points)
        e = int(errors[n - 1])
        curve.append(
            {
                "coverage": n / total,
                "threshold": float(sorted_scores[n - 1]),
                "error": e / n,
                "bound": clopper_pearson_upper(e, n, 1.0 - confidence),
            }
        )
    return curve


@dataclass(frozen=True)
class AuditVerdict:
    audited: int
    errors: int
    error_lower_bound: float
    revoke: bool
    reason: str


def audit_verdict(errors: int, audited: int, target_accuracy: float, confidence: float) -> AuditVerdict:
    """Whether a human audit of randomly drawn auto-accepted items refutes the calibration.

    Revoke when the audit shows, at the same confidence, that the error rate *exceeds* the
    allowance: the lower Clopper-Pearson bound (the upper bound on accuracy) is above it.
    """
    allowed = 1.0 - target_accuracy
    delta = 1.0 - confidence
    if audited == 0:
        return AuditVerdict(0, 0, 1.0, False, "no audited items yet")
    # Lower bound on the error rate = 1 - upper bound on the accuracy (count correct as "errors").
    lower = 1.0 - clopper_pearson_upper(audited - errors, audited, delta)
    revoke = lower > allowed
    reason = (
        f"{errors} of {audited} audited labels wrong: the error rate is above {allowed:.3f} "
        f"with {confidence:.0%} confidence (lower bound {lower:.3f})"
        if revoke
        else f"{errors} of {audited} audited labels wrong: consistent with the target"
    )
    return AuditVerdict(audited, errors, lower, revoke, reason)
