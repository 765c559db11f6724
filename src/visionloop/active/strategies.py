"""Which unlabelled items humans should label next, from the model's predictions and embeddings.

Every strategy ranks a pool of candidates and returns the positions of the ``budget`` chosen:

* ``random``: the baseline every claim is measured against.
* ``least-confidence``, ``margin``, ``entropy``: the items the model is least sure of, from the
  per-item uncertainty (already aggregated over objects, masks and keypoints for object tasks).
* ``k-center``: greedy farthest-first traversal of the embeddings (the coreset approach of Sener
  and Savarese, 2018): each pick is the item farthest from everything labelled or picked.
* ``typical-cluster``: for a cold start (TypiClust, Hacohen et al. 2022): k-means the pool into
  as many clusters as there will be labels, then take the most typical item (densest
  neighbourhood) of each of the largest clusters that hold no label yet.
* ``hybrid``: uncertainty first, diversity second (cluster-margin, Citovsky et al. 2021): the
  ``HYBRID_POOL`` x budget most uncertain items are clustered into ``budget`` groups by k-means
  and the most uncertain item of each is taken, so a batch is not spent on near-duplicates.
  (Farthest-first thinning instead chases outliers: on Fashion-MNIST it needed more labels
  than margin alone.)

``class_balance`` splits the budget evenly over the predicted classes (leftovers go to the
overall ranking), so rare classes are not starved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError

__all__ = ["STRATEGIES", "Candidates", "select"]

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

HYBRID_POOL = 5  # the hybrid strategy picks diversely among this many times the budget
TYPICALITY_NEIGHBOURS = 20
KMEANS_ITERATIONS = 25


@dataclass(frozen=True)
class Candidates:
    """The pool to choose from. ``uncertainty`` holds one of the scores the uncertainty
    strategies rank by (higher = less sure), keyed by strategy name; ``embeddings`` (N, D) feed
    the diversity strategies; ``labelled_embeddings`` (M, D) are the items humans already have."""

    uncertainty: dict[str, FloatArray]
    embeddings: npt.NDArray[np.floating[Any]] | None = None
    labelled_embeddings: npt.NDArray[np.floating[Any]] | None = None
    predicted_class: npt.NDArray[np.int64] | None = None

    @property
    def size(self) -> int:
        if self.embeddings is not None:
            return len(self.embeddings)
        return len(next(iter(self.uncertainty.values()))) if self.uncertainty else 0


Strategy = Callable[[Candidates, int, np.random.Generator, IndexArray], IndexArray]


def _random(pool: Candidates, budget: int, rng: np.random.Generator, allowed: IndexArray) -> IndexArray:
    shuffled: IndexArray = rng.permutation(allowed)[:budget].astype(np.int64)
    return shuffled


def _by_uncertainty(name: str) -> Strategy:
    def pick(pool: Candidates, budget: int, rng: np.random.Generator, allowed: IndexArray) -> IndexArray:
        scores = pool.uncertainty.get(name)
        if scores is None:
            raise ValidationError(f"the {name} strategy needs {name} scores; pre-label the items first")
        # Ties (e.g. several items with no detections) are broken at random, not by position.
        jitter = rng.random(len(allowed))
        order = np.lexsort((jitter, -scores[allowed]))
        ranked: IndexArray = allowed[order[:budget]].astype(np.int64)
        return ranked

    return pick


def _normalised(embeddings: npt.ArrayLike) -> FloatArray:
    """Rows scaled to unit length (float64), so dot products are cosine similarities."""
    rows = np.asarray(embeddings, dtype=np.float64)
    unit: FloatArray = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return unit


def _need_embeddings(pool: Candidates, name: str) -> FloatArray:
    if pool.embeddings is None:
        raise ValidationError(f"the {name} strategy needs embeddings; pre-label the items first")
    return _normalised(pool.embeddings)


def _squared_distances(points: FloatArray, centres: FloatArray) -> FloatArray:
    """Squared L2 distances between unit-norm rows: to one centre ``(D,)`` a vector, to the
    columns of ``(D, M)`` a matrix (one matmul either way)."""
    result: FloatArray = np.maximum(2.0 - 2.0 * (points @ centres), 0.0)
    return result


def farthest_first(
    points: FloatArray, budget: int, rng: np.random.Generator, seeds: FloatArray | None = None
) -> IndexArray:
    """Greedy k-center on unit-norm rows: each pick maximises the distance to the nearest centre."""
    if budget <= 0 or len(points) == 0:
        return np.zeros(0, np.int64)
    nearest = np.full(len(points), np.inf)
    if seeds is not None and len(seeds):
        for start in range(0, len(seeds), 256):
            block = seeds[start : start + 256]
            nearest = np.minimum(nearest, _squared_distances(points, block.T).min(axis=1))
        first = int(np.argmax(nearest))
    else:
        first = int(rng.integers(len(points)))
    chosen = [first]
    nearest = np.minimum(nearest, _squared_distances(points, points[first]))
    while len(chosen) < min(budget, len(points)):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, _squared_distances(points, points[pick]))
    return np.asarray(chosen, dtype=np.int64)


def _k_center(pool: Candidates, budget: int, rng: np.random.Generator, allowed: IndexArray) -> IndexArray:
    points = _need_embeddings(pool, "k-center")[allowed]
    labelled = None
    if pool.labelled_embeddings is not None:
        labelled = _normalised(pool.labelled_embeddings)
    return allowed[farthest_first(points, budget, rng, labelled)]


def kmeans(points: FloatArray, clusters: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Lloyd's k-means with k-means++ seeding; returns each point's cluster."""
    clusters = max(1, min(clusters, len(points)))
    centres = points[_kmeans_plus_plus(points, clusters, rng)]
    assignment = np.zeros(len(points), np.int64)
    squared = (points**2).sum(axis=1)
    for _ in range(KMEANS_ITERATIONS):
        distances = squared[:, None] - 2.0 * points @ centres.T + (centres**2).sum(axis=1)[None, :]
        updated = distances.argmin(axis=1)
        if np.array_equal(updated, assignment) and _ > 0:
            break
        assignment = updated
        for cluster in range(clusters):
            members = points[assignment == cluster]
            if len(members):
                centres[cluster] = members.mean(axis=0)
    return assignment


def _kmeans_plus_plus(points: FloatArray, clusters: int, rng: np.random.Generator) -> IndexArray:
    chosen = [int(rng.integers(len(points)))]
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, clusters):
        total = nearest.sum()
        pick = (
            int(rng.choice(len(points), p=nearest / total)) if total > 0 else int(rng.integers(len(points)))
        )
        chosen.append(pick)
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(axis=1))
    return np.asarray(chosen, dtype=np.int64)


def _typical_cluster(
    pool: Candidates, budget: int, rng: np.random.Generator, allowed: IndexArray
) -> IndexArray:
    points = _need_embeddings(pool, "typical-cluster")[allowed]
    labelled = 0 if pool.labelled_embeddings is None else len(pool.labelled_embeddings)
    assignment = kmeans(points, labelled + budget, rng)
    covered: set[int] = set()
    if labelled and pool.labelled_embeddings is not None:
        # A cluster already holding a labelled item is covered: send its nearest pool centre.
        marks = _normalised(pool.labelled_embeddings)
        nearest_pool = (marks @ points.T).argmax(axis=1)
        covered = {int(assignment[i]) for i in nearest_pool}
    sizes = np.bincount(assignment)
    order = [int(c) for c in np.argsort(-sizes, kind="stable") if int(c) not in covered and sizes[c] > 0]
    picks: list[int] = []
    for cluster in order[:budget]:
        members = np.flatnonzero(assignment == cluster)
        picks.append(int(members[np.argmax(_typicality(points[members]))]))
    if len(picks) < budget:  # fewer uncovered clusters than labels: fill by diversity
        rest = np.setdiff1d(np.arange(len(points)), picks)
        extra = farthest_first(points[rest], budget - len(picks), rng, points[picks] if picks else None)
        picks.extend(rest[extra].tolist())
    return allowed[np.asarray(picks, dtype=np.int64)]


def _typicality(members: FloatArray) -> FloatArray:
    """Inverse mean distance to the nearest neighbours within the cluster (TypiClust)."""
    if len(members) == 1:
        return np.ones(1)
    neighbours = min(TYPICALITY_NEIGHBOURS, len(members) - 1)
    distances = np.sqrt(_squared_distances(members, members.T))
    np.fill_diagonal(distances, np.inf)
    nearest = np.sort(distances, axis=1)[:, :neighbours]
    result: FloatArray = 1.0 / (nearest.mean(axis=1) + 1e-12)
    return result


def _hybrid(pool: Candidates, budget: int, rng: np.random.Generator, allowed: IndexArray) -> IndexArray:
    name = next((key for key in ("margin", "entropy", "least-confidence") if key in pool.uncertainty), None)
    if name is None:
        raise ValidationError("the hybrid strategy needs uncertainty scores; pre-label the items first")
    shortlist = _by_uncertainty(name)(pool, HYBRID_POOL * budget, rng, allowed)  # most uncertain first
    if len(shortlist) <= budget:
        return shortlist
    points = _need_embeddings(pool, "hybrid")[shortlist]
    assignment = kmeans(points, budget, rng)
    # The most uncertain member of each cluster: its first in the shortlist's order.
    _, first = np.unique(assignment, return_index=True)
    picks = shortlist[np.sort(first)]
    if len(picks) < budget:  # k-means left clusters empty: top up by uncertainty
        rest = shortlist[~np.isin(shortlist, picks)]
        picks = np.concatenate([picks, rest[: budget - len(picks)]])
    return picks.astype(np.int64)


STRATEGIES: dict[str, Strategy] = {
    "random": _random,
    "least-confidence": _by_uncertainty("least-confidence"),
    "margin": _by_uncertainty("margin"),
    "entropy": _by_uncertainty("entropy"),
    "k-center": _k_center,
    "typical-cluster": _typical_cluster,
    "hybrid": _hybrid,
}


def select(
    pool: Candidates,
    strategy: str,
    budget: int,
    *,
    seed: int = 0,
    class_balance: bool = False,
) -> IndexArray:
    """Positions (into the pool) of the ``budget`` items to label, in pick order."""
    pick = STRATEGIES.get(strategy)
    if pick is None:
        raise ValidationError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if budget < 0:
        raise ValidationError(f"budget must be at least 0, got {budget}")
    rng = np.random.default_rng(seed)
    everything = np.arange(pool.size, dtype=np.int64)
    budget = min(budget, pool.size)
    if not class_balance:
        return pick(pool, budget, rng, everything)
    if pool.predicted_class is None:
        raise ValidationError("class balance needs predicted classes; pre-label the items first")
    classes = np.unique(pool.predicted_class)
    share = budget // max(1, len(classes))
    chosen: list[int] = []
    for cls in classes.tolist():
        members = everything[pool.predicted_class == cls]
        chosen.extend(pick(pool, min(share, len(members)), rng, members).tolist())
    if len(chosen) < budget:  # small classes left some budget: fill from the overall ranking
        rest = np.setdiff1d(everything, chosen)
        chosen.extend(pick(pool, budget - len(chosen), rng, rest).tolist())
    return np.asarray(chosen, dtype=np.int64)
