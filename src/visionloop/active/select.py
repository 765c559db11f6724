"""``visionloop select``: choose the unlabelled items humans should label next, as a stored run.

The pool is every active item without an annotation. Strategies other than ``random`` read a
pre-label run (the newest finished one unless named): its predictions give the uncertainty of
each item, its embeddings the diversity strategies' geometry. Items humans labelled since that
run are excluded, and their embeddings (when the run has them) count as already covered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from visionloop.active.store import PRELABEL_KIND, embeddings_dir, load_embeddings
from visionloop.active.strategies import STRATEGIES, Candidates, select
from visionloop.active.uncertainty import uncertainty_scores
from visionloop.catalog import Catalog
from visionloop.core.errors import NotFoundError, ValidationError
from visionloop.core.labels import ClassLabel
from visionloop.project import Project

__all__ = ["SelectionReport", "select_items"]

RUN_KIND = "select"


@dataclass
class SelectionReport:
    run_id: str
    strategy: str
    budget: int
    pool: int
    prelabel_run: str | None
    items: list[int] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_prelabel_run(catalog: Catalog) -> str:
    """The newest finished pre-label run over the pool (runs over labelled items only, such as
    autolabel's calibration predictions, do not count)."""
    for run in catalog.list_runs(kind=PRELABEL_KIND, limit=200):
        if run.status == "succeeded" and run.config.get("items") != "labeled":
            return run.id
    raise NotFoundError("no finished pre-label run: run 'visionloop prelabel MODEL' first")


def select_items(
    project: Project,
    strategy: str,
    budget: int,
    *,
    prelabel_run: str | None = None,
    class_balance: bool = False,
    seed: int = 0,
    split: str | None = None,
) -> SelectionReport:
    """Choose ``budget`` unlabelled items (of ``split`` only, when given) by ``strategy``."""
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if budget < 1:
        raise ValidationError(f"budget must be at least 1, got {budget}")
    with project.open_catalog() as catalog:
        labelled = catalog.annotated_item_ids()
        unlabelled = {
            item.id: item.uri for item in catalog.iter_items(split=split) if item.id not in labelled
        }
        needs_model = strategy != "random" or class_balance
        run_of_predictions = None
        if needs_model:
            run_of_predictions = prelabel_run or latest_prelabel_run(catalog)
            pool, candidates = _candidates(project, catalog, run_of_predictions, unlabelled, labelled)
        else:
            pool, candidates = (
                sorted(unlabelled),
                Candidates(uncertainty={}, embeddings=np.zeros((len(unlabelled), 0))),
            )
        if not pool:
            raise ValidationError(
                "no unlabelled items to choose from"
                + (f" with predictions from pre-label run {run_of_predictions}" if run_of_predictions else "")
            )
        positions = select(candidates, strategy, budget, seed=seed, class_balance=class_balance)
        chosen = [pool[int(i)] for i in positions]
        run_id = catalog.start_run(
            RUN_KIND,
            {
                "strategy": strategy,
                "budget": budget,
                "class_balance": class_balance,
                "seed": seed,
                "split": split,
            },
            {"prelabel_run": run_of_predictions, "pool": len(pool)},
            parent_id=run_of_predictions,
        )
        report = SelectionReport(
            run_id, strategy, budget, len(pool), run_of_predictions, chosen, [unlabelled[i] for i in chosen]
        )
        catalog.finish_run(run_id, {"items": chosen, "count": len(chosen)})
    return report


def _candidates(
    project: Project,
    catalog: Catalog,
    run_id: str,
    unlabelled: dict[int, str],
    labelled: set[int],
) -> tuple[list[int], Candidates]:
    record = catalog.get_run(run_id)
    if record.kind != PRELABEL_KIND:
        raise ValidationError(f"run {run_id} is a {record.kind} run, not a pre-label run")
    predictions = catalog.run_predictions(run_id)
    pool = sorted(item for item in predictions if item in unlabelled)
    labels = [predictions[item][0] for item in pool]
    ids, rows = load_embeddings(embeddings_dir(project, run_id))
    row_of = {int(item): index for index, item in enumerate(ids.tolist())}
    embeddings = None
    if pool and all(item in row_of for item in pool):
        embeddings = rows[[row_of[item] for item in pool]]
    covered = [row_of[item] for item in labelled if item in row_of]
    classes = {name: index for index, name in enumerate(project.config.labels.classes)}
    predicted = np.array([_top_class(label, classes) for label in labels], dtype=np.int64)
    return pool, Candidates(
        uncertainty=uncertainty_scores(labels),
        embeddings=embeddings,
        labelled_embeddings=rows[covered] if covered else None,
        predicted_class=predicted,
    )


def _top_class(label: Any, classes: dict[str, int]) -> int:
    """The class an item counts under for class balance (objects: the most frequent)."""
    if isinstance(label, ClassLabel):
        return classes.get(label.class_name, -1)
    names = getattr(label, "class_names", ())
    if not names:
        return -1
    values, counts = np.unique(np.array([classes.get(name, -1) for name in names]), return_counts=True)
    return int(values[np.argmax(counts)])
