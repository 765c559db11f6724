"""Who or what made a label: a human, a model, or the calibrated auto-labeler."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ProvenanceKind(StrEnum):
    HUMAN = "human"
    MODEL = "model"
    AUTO = "auto"


class Provenance(BaseModel):
    """Origin of one annotation version.

    ``human`` labels name their annotator; ``model`` labels name the model version (and score);
    ``auto`` labels were auto-accepted and name the calibration run that allowed it, so they can
    never be confused with human labels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ProvenanceKind
    annotator: str | None = None
    model_version: str | None = None
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    calibration_run: str | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        if self.kind is ProvenanceKind.HUMAN and not self.annotator:
            raise ValueError("a human label needs an annotator id")
        if self.kind in (ProvenanceKind.MODEL, ProvenanceKind.AUTO) and not self.model_version:
            raise ValueError(f"a {self.kind} label needs the model version that produced it")
        if self.kind is ProvenanceKind.AUTO and not self.calibration_run:
            raise ValueError("an auto label needs the calibration run that accepted it")
        return self

    @classmethod
    def human(cls, annotator: str) -> Provenance:
        return cls(kind=ProvenanceKind.HUMAN, annotator=annotator)

    @classmethod
    def model(cls, model_version: str, score: float | None = None) -> Provenance:
        return cls(kind=ProvenanceKind.MODEL, model_version=model_version, score=score)

    @classmethod
    def auto(cls, model_version: str, calibration_run: str, score: float | None = None) -> Provenance:
        return cls(
            kind=ProvenanceKind.AUTO,
            model_version=model_version,
            calibration_run=calibration_run,
            score=score,
        )
