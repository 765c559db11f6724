"""Mirror the registry into MLflow, for teams whose tools read MLflow.

visionloop stays the source of truth (MLflow has aliases but no approvals): each sync makes
MLflow's registered model match it, idempotently. Every visionloop version becomes an MLflow
model version (found again by its ``visionloop.version`` tag), linked to an MLflow run of its
training run: the run the training observer already logged (tag ``visionloop.run_id``), or one
created here with the run's parameters and final metrics. Lineage, the gate verdict and
approval decisions become tags; aliases are set and removed to match.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from visionloop.core.errors import MissingDependencyError
from visionloop.core.mappings import flatten
from visionloop.project.mlflow_store import experiment_id
from visionloop.registry.records import ModelVersion, RegistryEvent, latest_decisions

__all__ = ["MlflowMirror", "SyncReport"]

logger = logging.getLogger(__name__)

VERSION_TAG = "visionloop.version"
RUN_TAG = "visionloop.run_id"
TAG_MAX = 5000  # MLflow's limit on a tag value
PARAM_MAX = 6000


class SyncReport(dict[str, int]):
    """Counts of what a sync created or changed in MLflow."""


class MlflowMirror:
    """Pushes versions, runs, tags and aliases to the registered model ``model_name`` at ``uri``."""

    def __init__(self, uri: str, model_name: str, project_root: Path, experiment: str = "visionloop") -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise MissingDependencyError("mlflow", "mlflow", "mirroring the registry to MLflow") from exc
        self.uri, self.model_name, self.experiment = uri, model_name, experiment
        self.project_root = project_root
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def sync(
        self, versions: Iterable[ModelVersion], aliases: dict[str, int], events: Iterable[RegistryEvent]
    ) -> SyncReport:
        report = SyncReport(versions=0, runs=0, tags=0, aliases=0)
        self._ensure_model()
        decisions = _decisions(events)
        existing = self._existing_versions()
        numbers: dict[int, str] = {}
        for version in sorted(versions, key=lambda v: v.version):
            tags = _tags(version, decisions.get(version.version, {}))
            mirrored = existing.get(version.version)
            if mirrored is None:
                run_id = self._run_for(version, report)
                created = self.client.create_model_version(
                    self.model_name,
                    source=version.model_path,
                    run_id=run_id,
                    tags=tags,
                    description=version.description,
                )
                numbers[version.version] = str(created.version)
                report["versions"] += 1
                continue
            numbers[version.version] = str(mirrored.version)
            for key, value in tags.items():
                if mirrored.tags.get(key) != value:
                    self.client.set_model_version_tag(self.model_name, str(mirrored.version), key, value)
                    report["tags"] += 1
        self._sync_aliases(
            {alias: numbers[number] for alias, number in aliases.items() if number in numbers}, report
        )
        return report

    # -- pieces ---------------------------------------------------------------------------
    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(
                self.model_name, description="Mirrored from a visionloop registry (the source of truth)."
            )

    def _existing_versions(self) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for mirrored in self.client.search_model_versions(f"name='{_quoted(self.model_name)}'"):
            tag = mirrored.tags.get(VERSION_TAG)
            if tag is not None and tag.isdigit():
                found[int(tag)] = mirrored
        return found

    def _run_for(self, version: ModelVersion, report: SyncReport) -> str | None:
        """The MLflow run of the version's training run, created from its record if none exists."""
        if version.run_id is None:
            return None
        experiment = experiment_id(self.client, self.experiment, self.uri, self.project_root)
        runs = self.client.search_runs([experiment], filter_string=f"tags.`{RUN_TAG}` = '{version.run_id}'")
        if runs:
            return str(runs[0].info.run_id)
        from mlflow.entities import Metric, Param

        run = self.client.create_run(
            experiment, tags={RUN_TAG: version.run_id}, run_name=f"visionloop-{version.run_id[:8]}"
        )
        params = [Param(key, str(value)[:PARAM_MAX]) for key, value in flatten(version.config).items()]
        metrics = [
            Metric(key, float(value), 0, 0)
            for key, value in flatten(version.metrics).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        for start in range(0, max(len(params), len(metrics)), 100):  # MLflow's batch limits
            self.client.log_batch(
                run.info.run_id, metrics=metrics[start : start + 100], params=params[start : start + 100]
            )
        self.client.set_terminated(run.info.run_id)
        report["runs"] += 1
        return str(run.info.run_id)

    def _sync_aliases(self, wanted: dict[str, str], report: SyncReport) -> None:
        aliases = self.client.get_registered_model(self.model_name).aliases or {}
        current = {str(alias): str(version) for alias, version in aliases.items()}
        for alias, version in wanted.items():
            if current.get(alias) != version:
                self.client.set_registered_model_alias(self.model_name, alias, version)
                report["aliases"] += 1
        for alias in set(current) - set(wanted):
            self.client.delete_registered_model_alias(self.model_name, alias)
            report["aliases"] += 1


def _tags(version: ModelVersion, decisions: dict[str, str]) -> dict[str, str]:
    tags = {
        VERSION_TAG: str(version.version),
        "visionloop.weights_sha256": version.weights_sha256,
        "visionloop.task": version.task,
        "visionloop.family": version.family,
        "visionloop.created_by": version.created_by,
    }
    if version.run_id:
        tags[RUN_TAG] = version.run_id
    if version.snapshot_id:
        tags["visionloop.snapshot"] = version.snapshot_id
    if version.parent_version is not None:
        tags["visionloop.parent_version"] = str(version.parent_version)
    if version.gate is not None:
        tags["visionloop.gate"] = (
            "passed" if version.gate.passed else "failed: " + "; ".join(version.gate.reasons)
        )
        tags["visionloop.evaluation_run"] = version.gate.evaluation_run
    for alias, decision in decisions.items():
        tags[f"visionloop.approval.{alias}"] = decision
    return {key: value[:TAG_MAX] for key, value in tags.items()}


def _decisions(events: Iterable[RegistryEvent]) -> dict[int, dict[str, str]]:
    """The newest approval decision per version and alias, as tag text."""
    return {
        version: {alias: _decision_text(event) for alias, event in by_alias.items()}
        for version, by_alias in latest_decisions(events).items()
    }


def _decision_text(event: RegistryEvent) -> str:
    verb = "approved" if event.action == "approve" else "rejected"
    return f"{verb} by {event.actor} at {event.created_at:%Y-%m-%dT%H:%M:%SZ}: {event.reason or ''}"


def _quoted(name: str) -> str:
    return name.replace("'", "''")
