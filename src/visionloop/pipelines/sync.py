"""``visionloop labelstudio sync``: pull new labels, retrain when the policy says so, push again.

One pass of the labelling loop against Label Studio, safe to run from cron, ``watch`` or by
hand as often as you like: the pull is incremental and idempotent (polling reconciles what
lost webhooks missed), the policy decides from the catalog whether the new labels are worth
a training (:mod:`retrain`), at most one training runs at a time across every process that
shares the catalog, and the retraining itself is a recorded ``model-assisted-labeling``
pipeline run (train -> pre-label -> select -> push), so a crash in it resumes, not restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from visionloop.pipelines import leases
from visionloop.pipelines.named import get_pipeline
from visionloop.pipelines.retrain import TRAINING_LEASE, RetrainDecision, decide_retrain
from visionloop.pipelines.runner import RUN_KIND, resume_pipeline, run_pipeline
from visionloop.project import Project
from visionloop.project.config import RetrainPolicy

__all__ = ["SyncReport", "sync_labelstudio"]

RETRAIN_PIPELINE = "model-assisted-labeling"

Log = Callable[[str], None]


@dataclass
class SyncReport:
    pulled: dict[str, Any]
    decision: dict[str, Any]
    pipeline_run: str | None = None
    pipeline_status: str | None = None
    note: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pulled": self.pulled,
            "decision": self.decision,
            "pipeline_run": self.pipeline_run,
            "pipeline_status": self.pipeline_status,
            "note": self.note,
            "outputs": self.outputs,
        }


def sync_labelstudio(
    project: Project,
    *,
    train: bool = False,
    policy: RetrainPolicy | None = None,
    params: Mapping[str, Any] | None = None,
    log: Log | None = None,
) -> SyncReport:
    """Pull, decide, and (if due) retrain and push through a ``model-assisted-labeling`` run.

    ``train`` asks for a training whatever the counts; ``params`` are that pipeline's parameters
    (over the project's ``pipelines:`` defaults; ``source`` is not ingested here)."""
    from visionloop.labeling.labelstudio import pull_annotations

    say = log or (lambda _message: None)
    pulled = pull_annotations(project).to_dict()
    say(f"pulled: {_pull_summary(pulled)}")
    report = SyncReport(pulled, {})
    unfinished = _unfinished_retraining(project)
    if unfinished is not None:  # a crashed retraining: finish it before deciding anything new
        say(f"resuming the unfinished retraining run {unfinished}")
        return _retrain(project, report, say, resume=unfinished)
    decision = _decide(project, policy, train)
    report.decision = decision.to_dict()
    say(f"retrain: {'yes' if decision.due else 'no'}, {decision.reason}")
    if not decision.due:
        return report
    return _retrain(project, report, say, params=params, policy=policy, train=train)


def _decide(project: Project, policy: RetrainPolicy | None, train: bool) -> RetrainDecision:
    with project.open_catalog() as catalog:
        return decide_retrain(catalog, policy or project.config.retrain, requested=train)


def _retrain(
    project: Project,
    report: SyncReport,
    say: Log,
    *,
    resume: str | None = None,
    params: Mapping[str, Any] | None = None,
    policy: RetrainPolicy | None = None,
    train: bool = False,
) -> SyncReport:
    """Run (or resume) the retraining pipeline under the training lease; skip if it is taken."""
    with project.open_catalog() as catalog:
        try:
            with leases.lease(catalog, TRAINING_LEASE, what="a retraining"):
                if resume is not None:
                    run = resume_pipeline(project, resume, log=say)
                else:
                    decision = _decide(project, policy, train)  # again: another process may just have trained
                    if not decision.due:
                        report.note = "another process retrained first"
                        return report
                    values = {**dict(params or {}), "source": None}
                    pipeline = get_pipeline(RETRAIN_PIPELINE)
                    trigger = {"trigger": {"sync": decision.to_dict()}}
                    run = run_pipeline(project, pipeline, values, inputs=trigger, log=say)
        except leases.LeaseHeld as held:
            report.note = str(held)
            say(f"retrain: skipped, {held}")
            return report
    report.pipeline_run, report.pipeline_status = run.run_id, run.status
    report.outputs = run.outputs
    return report


def _unfinished_retraining(project: Project) -> str | None:
    """The newest retraining run sync started, when a crash left it running (a failed one is not
    retried: its error would repeat; the next due decision starts a new run)."""
    with project.open_catalog() as catalog:
        for record in catalog.list_runs(kind=RUN_KIND, limit=50):
            if "sync" in (record.inputs.get("trigger") or {}):
                return record.id if record.status == "running" else None
    return None


def _pull_summary(pulled: Mapping[str, Any]) -> str:
    parts = [f"{value} {key}" for key, value in pulled.items() if isinstance(value, int) and value]
    return ", ".join(parts) or "nothing new"
