"""``visionloop loop``: the labeling loop with a simulated annotator, round after round.

What a team would do by hand, with an oracle standing in for the humans (see :mod:`oracle`):

1. The oracle labels the evaluation split (the yardstick, not counted as labels paid for), a
   random calibration sample of the pool (moved to split ``calib``, never trained on: it is
   what auto-labeling certifies its thresholds on) and a random seed set to start from.
2. Each round trains a model on the human labels of the ``train`` split, evaluates it on the
   evaluation split, pre-labels the unlabelled pool and, except after the last round, selects
   ``budget`` items with the strategy for the oracle to label.
3. The last model auto-labels what its calibration certifies; the oracle then labels the
   audit sample and the audit may revoke the calibration. The oracle also scores every
   auto-accepted label against the truth, which a real loop cannot do, to show the guarantee.

Every step is a stored run (children of the ``loop`` run); ``loop.json`` and ``report.html``
land in the loop run's folder. The report can draw another loop's learning curve (random
selection, say) next to this one's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.active.audit import audit_autolabel
from visionloop.active.autolabel import AutolabelOptions, agrees, autolabel
from visionloop.active.prelabel import PrelabelOptions, default_workers, prelabel
from visionloop.active.select import select_items
from visionloop.active.strategies import STRATEGIES
from visionloop.core.errors import ValidationError
from visionloop.core.provenance import ProvenanceKind
from visionloop.evaluation.evaluate import evaluate_model
from visionloop.pipelines.oracle import Oracle
from visionloop.project import Project
from visionloop.storage.filesystem import atomic_write_local
from visionloop.tasks.registry import get_task
from visionloop.training.config import TrainConfig
from visionloop.training.run import train_project

__all__ = [
    "CALIBRATION_SPLIT",
    "LoopOptions",
    "LoopReport",
    "LoopRound",
    "learning_curve",
    "read_loop",
    "run_loop",
]

RUN_KIND = "loop"
CALIBRATION_SPLIT = "calib"
LOOP_FILE = "loop.json"

Log = Callable[[str], None]


@dataclass(frozen=True)
class LoopOptions:
    rounds: int = 3
    budget: int = 100
    strategy: str = "margin"
    seed_labels: int | None = None  # random labels to start from; default: one budget
    calibration: int = 500
    eval_split: str = "test"
    target_accuracy: float = 0.95
    confidence: float = 0.95
    audit: float = 0.02
    seed: int = 0
    batch_size: int = 64
    workers: int | None = None  # pre-labeling's decoding processes (None: its default)

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValidationError(f"unknown strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}")
        if self.rounds < 1 or self.budget < 1 or self.calibration < 0:
            raise ValidationError("rounds and budget must be at least 1, calibration at least 0")
        if self.eval_split in ("train", CALIBRATION_SPLIT):
            raise ValidationError(f"the evaluation split cannot be {self.eval_split!r}")


@dataclass
class LoopRound:
    round: int
    labels: int  # human labels in the train split when the model trained
    train_run: str
    evaluate_run: str
    headline: float
    metrics: dict[str, Any]
    prelabel_run: str | None = None
    selection_run: str | None = None
    selected: int = 0
    seconds: float = 0.0


@dataclass
class LoopReport:
    run_id: str
    strategy: str
    task: str
    headline_metric: str
    target_accuracy: float = 0.95
    match: float = 0.5  # IoU / OKS at which an auto label counts as right (autolabel's default)
    pool: int = 0
    eval_items: int = 0
    calibration_items: int = 0
    seed_items: int = 0
    rounds: list[LoopRound] = field(default_factory=list)
    autolabel: dict[str, Any] = field(default_factory=dict)
    auto_accepted: int = 0
    auto_accuracy: float | None = None  # of the auto-accepted labels, against the hidden truth
    audit: dict[str, Any] = field(default_factory=dict)
    human_labels: int = 0  # labels paid for: seed + selections + calibration + audit
    seconds: float = 0.0
    folder: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopReport:
        rounds = [LoopRound(**entry) for entry in data.get("rounds", [])]
        return cls(**{**data, "rounds": rounds})


def run_loop(
    project: Project,
    oracle: Oracle,
    train_config: TrainConfig,
    options: LoopOptions = LoopOptions(),
    *,
    log: Log | None = None,
) -> LoopReport:
    """Run ``options.rounds`` rounds of train -> evaluate -> pre-label -> select -> oracle labels,
    then calibrated auto-labeling and its audit."""
    options.validate()
    say = log or (lambda _message: None)
    started = time.perf_counter()
    spec = get_task(project.config.labels.task)
    rng = np.random.default_rng(options.seed)
    with project.open_catalog() as catalog:
        run_id = catalog.start_run(
            RUN_KIND,
            asdict(options),
            {"oracle": oracle.source, "train": train_config.model_dump(mode="json")},
        )
    report = LoopReport(
        run_id, options.strategy, spec.task.value, spec.headline_metric, options.target_accuracy
    )
    folder = project.run_folder(run_id)
    report.folder = str(folder)
    try:
        _prepare(project, oracle, options, rng, report, say)
        for number in range(1, options.rounds + 1):
            report.rounds.append(_round(project, oracle, train_config, options, number, run_id, report, say))
        _autolabel(project, oracle, options, report, say)
    except Exception as exc:
        with project.open_catalog() as catalog:
            catalog.finish_run(run_id, report.to_dict(), error=f"{type(exc).__name__}: {exc}")
        raise
    report.seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_local(str(folder / LOOP_FILE), json.dumps(report.to_dict(), indent=2).encode())
    with project.open_catalog() as catalog:
        catalog.finish_run(run_id, report.to_dict())
    return report


def _prepare(
    project: Project,
    oracle: Oracle,
    options: LoopOptions,
    rng: np.random.Generator,
    report: LoopReport,
    say: Log,
) -> None:
    """Evaluation truth, the calibration sample and the seed labels."""
    with project.open_catalog() as catalog:
        labelled = catalog.annotated_item_ids()
        by_split: dict[str, list[int]] = {}
        for item in catalog.iter_items():
            by_split.setdefault(item.split or "", []).append(item.id)
        evaluation = [item for item in by_split.get(options.eval_split, []) if oracle.knows(item)]
        if not evaluation:
            raise ValidationError(f"the oracle knows no item of the evaluation split {options.eval_split!r}")
        oracle.reveal(catalog, [item for item in evaluation if item not in labelled], report.run_id)
        report.eval_items = len(evaluation)
        pool = sorted(
            item for item in by_split.get("train", []) if item not in labelled and oracle.knows(item)
        )
        calibration = [item for item in by_split.get(CALIBRATION_SPLIT, []) if oracle.knows(item)]
        wanted = max(0, options.calibration - len(calibration))
        if wanted:
            drawn = sorted(int(i) for i in rng.choice(pool, size=min(wanted, len(pool)), replace=False))
            catalog.assign_split(drawn, CALIBRATION_SPLIT)
            calibration += drawn
            pool = sorted(set(pool) - set(drawn))
        report.calibration_items = len(
            oracle.reveal(catalog, [item for item in calibration if item not in labelled], report.run_id)
        )
        human_train = [item for item in by_split.get("train", []) if item in labelled]
        seed_target = options.budget if options.seed_labels is None else options.seed_labels
        missing = max(0, seed_target - len(human_train))
        seed = sorted(int(i) for i in rng.choice(pool, size=min(missing, len(pool)), replace=False))
        report.seed_items = len(oracle.reveal(catalog, seed, report.run_id))
        report.pool = len(pool) - len(seed)
        report.human_labels = report.calibration_items + report.seed_items
    say(
        f"oracle labelled {report.eval_items} evaluation items, {report.calibration_items} calibration "
        f"items and {report.seed_items} seed items; {report.pool} items stay in the pool"
    )


def _round(
    project: Project,
    oracle: Oracle,
    train_config: TrainConfig,
    options: LoopOptions,
    number: int,
    loop_run: str,
    report: LoopReport,
    say: Log,
) -> LoopRound:
    started = time.perf_counter()
    trained = train_project(project, train_config, parent_run=loop_run)
    evaluation = evaluate_model(project, trained.run_id, split=options.eval_split, corruptions=(), explain=0)
    headline = float(evaluation.metrics.get(report.headline_metric, float("nan")))
    scalars = {key: value for key, value in evaluation.metrics.items() if isinstance(value, int | float)}
    entry = LoopRound(
        round=number,
        labels=trained.train_items + trained.val_items,
        train_run=trained.run_id,
        evaluate_run=evaluation.run_id or "",
        headline=headline,
        metrics=scalars,
    )
    last = number == options.rounds
    if last or options.strategy != "random":  # random selection needs no predictions
        predicted = prelabel(
            project,
            trained.run_id,
            PrelabelOptions(
                items="unlabeled",
                batch_size=options.batch_size,
                workers=default_workers() if options.workers is None else options.workers,
            ),
        )
        entry.prelabel_run = predicted.run_id
    if not last:
        selection = select_items(
            project,
            options.strategy,
            options.budget,
            prelabel_run=entry.prelabel_run,
            seed=options.seed + number,
            split="train",
        )
        with project.open_catalog() as catalog:
            revealed = oracle.reveal(catalog, selection.items, selection.run_id)
        entry.selection_run, entry.selected = selection.run_id, len(revealed)
        report.human_labels += len(revealed)
    entry.seconds = time.perf_counter() - started
    say(
        f"round {number}: {entry.labels} labels -> {report.headline_metric} {headline:.4f}"
        + (f"; {entry.selected} more selected by {options.strategy}" if entry.selected else "")
        + f" ({entry.seconds:.0f} s)"
    )
    return entry


def _autolabel(project: Project, oracle: Oracle, options: LoopOptions, report: LoopReport, say: Log) -> None:
    last = report.rounds[-1]
    settings = AutolabelOptions(
        target_accuracy=options.target_accuracy,
        confidence=options.confidence,
        audit=options.audit,
        seed=options.seed,
        calibration_split=CALIBRATION_SPLIT,
    )
    report.match = settings.match
    result = autolabel(project, settings, prelabel_run=last.prelabel_run)
    report.autolabel = result.to_dict()
    task = project.config.labels.task
    with project.open_catalog() as catalog:
        accepted = {
            item: annotation.label
            for item, annotation in catalog.current_annotations().items()
            if annotation.provenance.kind is ProvenanceKind.AUTO
            and annotation.provenance.calibration_run == result.run_id
        }
        report.auto_accepted = len(accepted)
        if accepted:
            right = sum(
                agrees(task, oracle.truth[item], label, settings.match) for item, label in accepted.items()
            )
            report.auto_accuracy = right / len(accepted)
        audited = oracle.reveal(catalog, result.audit_items, result.run_id)
        report.human_labels += len(audited)
    if result.audit_items:
        report.audit = audit_autolabel(project, result.run_id).to_dict()
    accuracy = "n/a" if report.auto_accuracy is None else f"{report.auto_accuracy:.4f}"
    say(
        f"auto-labelled {report.auto_accepted} of {result.candidates} pool items ({result.coverage:.1%}); "
        f"accuracy against the hidden truth {accuracy} (target {options.target_accuracy})"
    )


def read_loop(path: Path) -> LoopReport:
    """A loop's ``loop.json`` (a file or the loop run's folder)."""
    file = path / LOOP_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{file}: not a readable loop result: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{file}: not a loop result")
    try:
        return LoopReport.from_dict(data)
    except TypeError as exc:
        raise ValidationError(f"{file}: not a loop result: {exc}") from exc


def learning_curve(report: LoopReport) -> tuple[Sequence[int], Sequence[float]]:
    return [entry.labels for entry in report.rounds], [entry.headline for entry in report.rounds]
