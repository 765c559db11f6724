"""Selection strategies pick what they promise: the least sure items, spread-out items, typical
items of uncovered clusters, balanced classes; and never the same item twice."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.active.strategies import STRATEGIES, Candidates, farthest_first, kmeans, select
from visionloop.active.uncertainty import item_confidence, uncertainty_scores
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels


def _blobs(rng: np.random.Generator, centres: int = 6, per: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Tight clusters around random unit directions in 16-D."""
    directions = rng.normal(size=(centres, 16))
    points = np.repeat(directions, per, axis=0) + rng.normal(scale=0.05, size=(centres * per, 16))
    return points, np.repeat(np.arange(centres), per)


def _pool(rng: np.random.Generator) -> tuple[Candidates, np.ndarray]:
    points, cluster = _blobs(rng)
    margin = rng.random(len(points))
    return Candidates(
        uncertainty={"margin": margin, "entropy": margin, "least-confidence": margin},
        embeddings=points,
        predicted_class=cluster,
    ), cluster


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_returns_the_budget_of_distinct_items(strategy: str) -> None:
    pool, _ = _pool(np.random.default_rng(0))
    chosen = select(pool, strategy, 12, seed=1)
    assert len(chosen) == 12 == len(set(chosen.tolist()))
    assert chosen.min() >= 0 and chosen.max() < pool.size
    assert np.array_equal(chosen, select(pool, strategy, 12, seed=1))  # reproducible


def test_uncertainty_strategies_take_the_least_sure_items() -> None:
    pool, _ = _pool(np.random.default_rng(0))
    chosen = select(pool, "margin", 10)
    assert set(chosen.tolist()) == set(np.argsort(-pool.uncertainty["margin"])[:10].tolist())


def test_k_center_covers_every_cluster_before_repeating_one() -> None:
    pool, cluster = _pool(np.random.default_rng(0))
    assert len(set(cluster[select(pool, "k-center", 6)].tolist())) == 6
    assert len(set(cluster[select(pool, "random", 6, seed=3)].tolist())) < 6  # what chance gives


def test_k_center_starts_away_from_what_is_already_labelled() -> None:
    rng = np.random.default_rng(0)
    points, cluster = _blobs(rng)
    labelled = points[cluster < 5][::10]  # humans already labelled clusters 0 to 4
    pool = Candidates(uncertainty={}, embeddings=points, labelled_embeddings=labelled)
    assert cluster[select(pool, "k-center", 1)[0]] == 5


def test_typical_cluster_takes_one_central_item_per_cluster() -> None:
    rng = np.random.default_rng(0)
    points, cluster = _blobs(rng)
    points[0] += 3.0  # an outlier inside cluster 0 must never be the "typical" pick
    pool = Candidates(uncertainty={}, embeddings=points)
    chosen = select(pool, "typical-cluster", 6)
    assert sorted(cluster[chosen].tolist()) == list(range(6))
    assert 0 not in chosen.tolist()


def test_hybrid_spreads_an_uncertain_shortlist() -> None:
    rng = np.random.default_rng(0)
    points, cluster = _blobs(rng)
    margin = np.where(cluster < 3, 0.9, 0.1) + rng.random(len(points)) * 0.01
    pool = Candidates(uncertainty={"margin": margin}, embeddings=points)
    chosen = select(pool, "hybrid", 3)
    assert sorted(cluster[chosen].tolist()) == [0, 1, 2]  # uncertain clusters only, one each


def test_class_balance_gives_each_predicted_class_its_share() -> None:
    pool, cluster = _pool(np.random.default_rng(0))
    chosen = select(pool, "margin", 12, class_balance=True)
    assert np.bincount(cluster[chosen], minlength=6).tolist() == [2] * 6


def test_kmeans_recovers_well_separated_clusters() -> None:
    points, cluster = _blobs(np.random.default_rng(2), centres=4)
    found = kmeans(points, 4, np.random.default_rng(0))
    pairs = {(int(a), int(b)) for a, b in zip(cluster, found, strict=True)}
    assert len(pairs) == 4  # a one-to-one map between true and found clusters


def test_farthest_first_with_no_budget_or_points() -> None:
    rng = np.random.default_rng(0)
    assert farthest_first(np.zeros((0, 3)), 5, rng).size == 0
    assert farthest_first(np.eye(3), 0, rng).size == 0


def test_missing_inputs_are_named() -> None:
    pool = Candidates(uncertainty={"margin": np.zeros(3)})
    with pytest.raises(ValidationError, match="needs embeddings"):
        select(pool, "k-center", 2)
    with pytest.raises(ValidationError, match="unknown strategy"):
        select(pool, "smart", 2)
    with pytest.raises(ValidationError, match="needs entropy scores"):
        select(pool, "entropy", 2)


def test_uncertainty_of_classifications_and_objects() -> None:
    sure = ClassLabel("a", 0.98, (0.98, 0.01, 0.01))
    torn = ClassLabel("a", 0.5, (0.5, 0.49, 0.01))
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 20]], float)
    objects = ObjectLabels(boxes=boxes, class_names=("a", "b"), scores=np.array([0.95, 0.55]))
    empty = ObjectLabels(boxes=np.zeros((0, 4)), class_names=())
    scores = uncertainty_scores([sure, torn, objects, empty, None])
    assert scores["least-confidence"][:2] == pytest.approx([0.02, 0.5])
    assert scores["margin"][:2] == pytest.approx([0.03, 0.99])
    assert scores["entropy"][0] < scores["entropy"][1] <= 1.0
    assert scores["least-confidence"][2] == pytest.approx(0.45)  # the weaker box decides
    assert scores["margin"][2] == pytest.approx(0.9)
    assert all(scores[name][3] == scores[name][4] == 1.0 for name in scores)
    assert item_confidence(sure) == 0.98 and item_confidence(objects) == pytest.approx(0.55)
    assert item_confidence(empty) == 1.0 and item_confidence(None) == 0.0
