"""Auditing an auto-label calibration: do humans agree with what it accepted?

``visionloop autolabel`` lists a random share of the labels it accepted (``audit_items``). Once
humans have labelled those items, :func:`audit_autolabel` compares each human label with the
auto label it checks, and :func:`~visionloop.active.calibration.audit_verdict` decides whether the
errors show, at the calibration's confidence, that the accepted labels miss the target. If they
do, the calibration run is revoked: its auto labels stop counting everywhere (status, snapshots,
training, the unlabelled pool) while staying in the history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from visionloop.active.autolabel import RUN_KIND, agrees
from visionloop.active.calibration import audit_verdict
from visionloop.catalog import Catalog
from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.provenance import ProvenanceKind
from visionloop.project import Project

__all__ = ["AuditReport", "audit_autolabel"]


@dataclass
class AuditReport:
    run_id: str
    audit_items: int
    audited: int
    errors: int
    error_lower_bound: float
    revoked: bool
    reason: str
    disagreements: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_autolabel(project: Project, run_id: str, *, revoke: bool = True) -> AuditReport:
    """Check the audited items of autolabel run ``run_id``; revoke it when they refute it."""
    task = project.config.labels.task
    with project.open_catalog() as catalog:
        record = catalog.get_run(run_id)
        if record.kind != RUN_KIND or record.status not in ("succeeded", "revoked"):
            raise ValidationError(f"run {run_id} is not a finished autolabel run")
        outputs = record.outputs or {}
        options = record.config
        items = [int(item) for item in outputs.get("audit_items", [])]
        checked = _human_checks(catalog, run_id, items)
        disagreements = [
            item for item, (auto, human) in checked.items() if not agrees(task, human, auto, options["match"])
        ]
        verdict = audit_verdict(
            len(disagreements), len(checked), options["target_accuracy"], options["confidence"]
        )
        revoked = record.status == "revoked"
        if verdict.revoke and revoke and not revoked:
            catalog.revoke_run(run_id, f"audit: {verdict.reason}")
            revoked = True
    return AuditReport(
        run_id,
        len(items),
        verdict.audited,
        verdict.errors,
        verdict.error_lower_bound,
        revoked,
        verdict.reason,
        sorted(disagreements),
    )


def _human_checks(catalog: Catalog, run_id: str, items: list[int]) -> dict[int, tuple[Label, Label]]:
    """(auto label, later human label) for each audit item a human has labelled since."""
    checks: dict[int, tuple[Label, Label]] = {}
    for item in items:
        history = catalog.annotation_history(item)
        auto = next(
            (
                entry
                for entry in history
                if entry.provenance.kind is ProvenanceKind.AUTO and entry.provenance.calibration_run == run_id
            ),
            None,
        )
        if auto is None:
            continue
        humans = [
            entry
            for entry in history
            if entry.provenance.kind is ProvenanceKind.HUMAN and entry.version > auto.version
        ]
        if humans:
            checks[item] = (auto.label, max(humans, key=lambda entry: entry.version).label)
    return checks
