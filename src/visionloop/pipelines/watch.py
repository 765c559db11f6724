"""``visionloop watch``: turn events into pipeline runs, each event once.

A pass asks every trigger's source for occurrences, stores each as an event (a redelivery is
dropped by the event key), then runs the pipeline of every event not finished yet, one at a
time. An event whose run a crash interrupted is resumed, not started again. The
``annotations`` trigger runs one ``labelstudio sync`` pass, which is idempotent by itself.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from visionloop.core.errors import ConfigError
from visionloop.pipelines.events import finish_event, pending_events, record_event, start_event
from visionloop.pipelines.named import get_pipeline
from visionloop.pipelines.runner import resume_pipeline, start_pipeline
from visionloop.pipelines.sources import (
    Occurrence,
    delete_message,
    object_occurrences,
    queue_occurrences,
    schedule_occurrence,
)
from visionloop.project import Project
from visionloop.project.config import TriggerConfig

__all__ = ["WatchReport", "fill_params", "watch_pass"]

Log = Callable[[str], None]


@dataclass
class WatchReport:
    events: int = 0  # newly recorded
    duplicates: int = 0  # deliveries of events already recorded
    runs: list[dict[str, Any]] = field(default_factory=list)
    syncs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def watch_pass(project: Project, *, log: Log | None = None, now: float | None = None) -> WatchReport:
    """One look at every trigger and one run per pending event."""
    say = log or (lambda _message: None)
    started = time.perf_counter()
    report = WatchReport()
    for trigger in project.config.triggers:
        if trigger.event == "annotations":
            from visionloop.pipelines.sync import sync_labelstudio

            report.syncs.append(sync_labelstudio(project, log=say).to_dict())
            continue
        _collect(project, trigger, report, say, now)
        _run_pending(project, trigger, report, say)
    report.seconds = time.perf_counter() - started
    return report


def _collect(
    project: Project, trigger: TriggerConfig, report: WatchReport, say: Log, now: float | None
) -> None:
    if trigger.event == "schedule":
        occurrences: list[Occurrence] = [schedule_occurrence(trigger, now)]
    elif trigger.queue:
        occurrences = list(queue_occurrences(project, trigger))
    else:
        occurrences = list(object_occurrences(project, trigger, now))
    with project.open_catalog() as catalog:
        for occurrence in occurrences:
            if occurrence.identity:
                payload = {**occurrence.payload, "identity": occurrence.identity}
                if record_event(catalog, trigger.name, occurrence.identity, occurrence.description, payload):
                    report.events += 1
                    say(f"{trigger.name}: {occurrence.description}")
                else:
                    report.duplicates += 1
            if occurrence.receipt is not None:  # recorded (or a duplicate): the queue may forget it
                delete_message(project, trigger, occurrence.receipt)


def _run_pending(project: Project, trigger: TriggerConfig, report: WatchReport, say: Log) -> None:
    assert trigger.pipeline is not None  # noqa: S101 - TriggerConfig requires it for these events
    pipeline = get_pipeline(trigger.pipeline)
    with project.open_catalog() as catalog:
        events = pending_events(catalog, trigger.name)
    for event in events:
        with project.open_catalog() as catalog:
            run_id = event.run_id
            if run_id is None:
                params = fill_params(trigger.params, event.payload)
                inputs = {
                    "trigger": {"name": trigger.name, "event": event.id, "description": event.description}
                }
                run_id = start_pipeline(project, pipeline, params, inputs=inputs)
                start_event(catalog, event.id, run_id)
                say(f"{trigger.name}: started {pipeline.name} run {run_id}")
            else:
                say(f"{trigger.name}: resuming {pipeline.name} run {run_id} (interrupted)")
        try:
            run = resume_pipeline(project, run_id, log=say, pipeline=pipeline)
        except Exception as exc:  # noqa: BLE001 - one failed event must not stop the watcher
            with project.open_catalog() as catalog:
                finish_event(catalog, event.id, f"{type(exc).__name__}: {exc}")
            report.runs.append({"event": event.id, "run_id": run_id, "status": "failed", "error": str(exc)})
            say(f"{trigger.name}: run {run_id} failed: {exc}")
            continue
        if run.status == "waiting":
            report.runs.append({"event": event.id, "run_id": run_id, "status": run.status})
            continue
        with project.open_catalog() as catalog:
            finish_event(catalog, event.id, None if run.status == "succeeded" else run.error or run.status)
        report.runs.append({"event": event.id, "run_id": run_id, "status": run.status})


def fill_params(params: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Fill ``{uri}``-style fields of string parameters from the event; only plain names are
    allowed (no attribute or index access), and unknown names are an error."""
    values = {key: str(value) for key, value in payload.items()}

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: fill(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [fill(inner) for inner in value]
        if not isinstance(value, str):
            return value
        out = []
        for literal, name, spec, conversion in string.Formatter().parse(value):
            out.append(literal)
            if name is None:
                continue
            if spec or conversion or name not in values:
                raise ConfigError(
                    f"trigger parameter {value!r}: {{{name}}} is not one of {', '.join(sorted(values))}"
                )
            out.append(values[name])
        return "".join(out)

    return {key: fill(value) for key, value in params.items()}
