"""When to retrain: after N new human labels, on a schedule, or on request, debounced.

Label Studio's ML backends call ``fit()`` on every single annotation (label-studio #3559);
annotators label in bursts, so a model trained per annotation is stale before it finishes and
the machine never rests. This policy decides from the catalog alone (so every process that
shares it agrees): the labels the newest training did not see, the time since it started,
and training requests recorded since (Label Studio's START_TRAINING webhook, or ``--train``).
A decision to train waits until labelling has been quiet for ``debounce_s``. One training at a
time is the caller's lease (``TRAINING_LEASE``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from visionloop.catalog import Catalog
from visionloop.catalog.engine import read_connection
from visionloop.catalog.records import as_utc, utcnow
from visionloop.catalog.tables import annotation_versions, runs
from visionloop.core.provenance import ProvenanceKind
from visionloop.project.config import RetrainPolicy

__all__ = ["TRAINING_LEASE", "RetrainDecision", "RetrainPolicy", "decide_retrain"]

TRAINING_LEASE = "training"
TRAIN_RUN_KIND = "train"
REQUEST_RUN_KIND = "labelstudio_event"  # START_TRAINING webhooks, as the ML backend records them
REQUEST_ACTION = "START_TRAINING"


@dataclass(frozen=True)
class RetrainDecision:
    due: bool
    reason: str
    new_labels: int
    last_training: str | None
    requested: bool
    quiet_for_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_retrain(
    catalog: Catalog, policy: RetrainPolicy, *, requested: bool = False, now: datetime | None = None
) -> RetrainDecision:
    """Whether to train now, and why (or why not)."""
    now = now or utcnow()
    with read_connection(catalog.engine) as connection:
        last = connection.execute(
            select(runs.c.id, runs.c.created_at)
            .where(runs.c.kind == TRAIN_RUN_KIND, runs.c.status.in_(("running", "succeeded")))
            .order_by(runs.c.created_at.desc())
            .limit(1)
        ).first()
        since = as_utc(last.created_at) if last is not None else None
        human = annotation_versions.c.provenance == ProvenanceKind.HUMAN.value
        newer = human if since is None else human & (annotation_versions.c.created_at > since)
        new_labels, newest = connection.execute(
            select(func.count(), func.max(annotation_versions.c.created_at)).where(newer)
        ).one()
        if policy.on_request and not requested:
            request = select(func.count()).where(
                runs.c.kind == REQUEST_RUN_KIND, runs.c.config["action"].as_string() == REQUEST_ACTION
            )
            if since is not None:
                request = request.where(runs.c.created_at > since)
            requested = bool(connection.execute(request).scalar())
    quiet = None if newest is None else (now - as_utc(newest)).total_seconds()
    last_id = None if last is None else str(last.id)

    def decision(due: bool, reason: str) -> RetrainDecision:
        return RetrainDecision(due, reason, int(new_labels), last_id, requested, quiet)

    if policy.on_request and requested:
        return decision(True, "training was requested")
    if new_labels == 0:
        return decision(False, "no new human labels since the last training")
    if quiet is not None and quiet < policy.debounce_s:
        wait = f"waiting for {policy.debounce_s:.0f} s of quiet"
        return decision(False, f"labelling is still going on (last label {quiet:.0f} s ago, {wait})")
    if policy.after_labels is not None and new_labels >= policy.after_labels:
        return decision(True, f"{new_labels} new human labels (policy: after {policy.after_labels})")
    if policy.every_s is not None and (since is None or now - since >= timedelta(seconds=policy.every_s)):
        return decision(True, f"{new_labels} new human labels; the schedule ({policy.every_s:.0f} s) is due")
    wanted = f"{policy.after_labels}" if policy.after_labels is not None else "a schedule or a request"
    return decision(False, f"{new_labels} new human labels, waiting for {wanted}")
