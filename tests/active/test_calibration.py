"""Calibrated thresholds keep the error of auto-accepted labels within the target, refuse when
the evidence is too thin, and audits can revoke them."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.active.calibration import (
    audit_verdict,
    calibrate_thresholds,
    clopper_pearson_upper,
    labels_needed,
)
from visionloop.core.errors import ValidationError


@pytest.mark.parametrize(("errors", "n"), [(0, 59), (3, 100), (40, 1000), (7, 7), (1, 2)])
def test_the_upper_bound_matches_the_beta_quantile(errors: int, n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    expected = 1.0 if errors == n else float(stats.beta.ppf(0.95, errors + 1, n - errors))
    assert clopper_pearson_upper(errors, n, 0.05) == pytest.approx(expected, abs=1e-9)


def test_the_fewest_labels_that_can_certify_a_target() -> None:
    assert labels_needed(0.95, 0.05) == 59  # 0.95 ** 59 < 0.05 <= 0.95 ** 58
    assert clopper_pearson_upper(0, 59, 0.05) <= 0.05 < clopper_pearson_upper(0, 58, 0.05)


def test_too_few_calibration_items_accept_nothing_and_say_how_many_more() -> None:
    # A perfect set certifies 95% accuracy at 95% confidence from 59 items (0.95 ** 59 < 0.05).
    calibration = calibrate_thresholds([0.99] * 50, [True] * 50, target_accuracy=0.95, confidence=0.95)
    entry = calibration.thresholds[None]
    assert entry.threshold is None and not calibration.accepts(None, 1.0)
    assert entry.more_needed == 9 and "9 more" in entry.reason
    assert calibrate_thresholds([0.99] * 59, [True] * 59).threshold_for(None) == 0.99


def test_testing_stops_at_the_first_threshold_that_fails() -> None:
    # 600 items: the top 400 are all right, the next 200 all wrong. Fixed-sequence testing walks
    # down from the top and must stop before the accepted set's bound crosses 5%.
    scores = np.linspace(1.0, 0.0, 600)
    correct = np.arange(600) < 400
    entry = calibrate_thresholds(scores, correct).thresholds[None]
    assert entry.threshold is not None and entry.error_bound is not None
    assert entry.error_bound <= 0.05
    assert 400 <= entry.accepted_items < 440  # past the clean block only as far as the bound allows


def test_one_error_among_the_top_items_does_not_stop_the_sequence() -> None:
    # The very first item is wrong; a sequence starting at the top few items would stop there.
    scores = np.linspace(1.0, 0.0, 1000)
    correct = np.ones(1000, bool)
    correct[0] = False
    assert calibrate_thresholds(scores, correct).thresholds[None].coverage > 0.9


def _draw(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores massed near 1, like a good classifier's (95% right overall)."""
    scores = 1.0 - rng.beta(1.0, 20.0, count)
    return scores, rng.random(count) < scores


def test_accepted_labels_meet_the_target_in_at_least_the_stated_share_of_trials() -> None:
    rng = np.random.default_rng(0)
    target, trials, violations, coverages = 0.95, 80, 0, []
    for _ in range(trials):
        scores, correct = _draw(rng, 1000)
        calibration = calibrate_thresholds(scores, correct, target_accuracy=target, confidence=0.95)
        threshold = calibration.threshold_for(None)
        fresh_scores, fresh_correct = _draw(rng, 20_000)
        if threshold is None:  # refusing is always safe; it only costs coverage
            coverages.append(0.0)
            continue
        accepted = fresh_scores >= threshold
        coverages.append(accepted.mean())
        violations += fresh_correct[accepted].mean() < target
    # The guarantee is 95%; a point estimate instead of the bound would fail about half the time.
    assert violations / trials <= 0.1
    assert np.mean(coverages) > 0.5  # and it still accepts a useful share


def test_per_class_thresholds_certify_the_reliable_class_only() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(600)
    groups = ["cat"] * 300 + ["dog"] * 300
    correct = np.r_[np.ones(300, bool), rng.random(300) < 0.7]  # cats always right, dogs 70%
    calibration = calibrate_thresholds(scores, correct, target_accuracy=0.95, groups=groups)
    assert calibration.per_class
    assert calibration.threshold_for("cat") is not None
    assert calibration.accepts("cat", 1.0)
    assert calibration.threshold_for("dog") is None and not calibration.accepts("dog", 1.0)
    assert calibration.threshold_for("bird") is None  # an unseen class is never auto-accepted


def test_an_audit_revokes_only_when_errors_clearly_exceed_the_allowance() -> None:
    assert audit_verdict(10, 50, 0.95, 0.95).revoke
    assert not audit_verdict(1, 50, 0.95, 0.95).revoke
    assert not audit_verdict(0, 0, 0.95, 0.95).revoke


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_accuracy": 1.0}, "target accuracy"),
        ({"confidence": 0.0}, "confidence"),
        ({"groups": ["a"]}, "one entry per calibration item"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        calibrate_thresholds([0.5, 0.6], [True, False], **kwargs)  # type: ignore[arg-type]
