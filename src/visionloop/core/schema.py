"""Task types and the label schema of a project (classes, keypoint names, skeleton)."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

_NAME = re.compile(r"^[^\x00-\x1f,]{1,128}$")


class TaskType(StrEnum):
    """The four task families visionloop labels, trains and serves."""

    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
    KEYPOINTS = "keypoints"


def is_valid_name(name: str) -> bool:
    """Whether ``name`` can be a class or keypoint name: 1-128 printable characters, no commas,
    no surrounding blanks (formats that infer a schema check names with this first)."""
    return bool(_NAME.match(name)) and name == name.strip()


def _check_names(kind: str, names: list[str]) -> list[str]:
    cleaned = [name.strip() for name in names]
    for name in cleaned:
        if not _NAME.match(name):
            raise ValueError(
                f"invalid {kind} name {name!r}: use 1 to 128 printable characters without commas"
            )
    seen: set[str] = set()
    dupes = sorted({name for name in cleaned if name in seen or seen.add(name)})  # type: ignore[func-returns-value]
    if dupes:
        raise ValueError(f"duplicate {kind} names: {', '.join(dupes)}")
    return cleaned


class LabelSchema(BaseModel):
    """What labels mean in one project.

    ``skeleton`` holds pairs of keypoint *names*, which stay readable in YAML and cannot go
    stale when keypoints are reordered; :attr:`skeleton_indices` gives 0-based index pairs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: TaskType
    classes: list[str]
    keypoints: list[str] = []
    skeleton: list[tuple[str, str]] = []

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one class is needed")
        return _check_names("class", value)

    @field_validator("keypoints")
    @classmethod
    def _keypoints(cls, value: list[str]) -> list[str]:
        return _check_names("keypoint", value)

    @model_validator(mode="after")
    def _consistent(self) -> LabelSchema:
        if self.task is TaskType.KEYPOINTS and not self.keypoints:
            raise ValueError("a keypoints project needs keypoint names (--keypoints nose,...)")
        if self.task is not TaskType.KEYPOINTS and (self.keypoints or self.skeleton):
            raise ValueError(f"keypoints and skeleton only apply to keypoints projects, not {self.task}")
        known = set(self.keypoints)
        for a, b in self.skeleton:
            for name in (a, b):
                if name not in known:
                    raise ValueError(f"skeleton names unknown keypoint {name!r}")
            if a == b:
                raise ValueError(f"skeleton edge joins {a!r} to itself")
        return self

    @property
    def skeleton_indices(self) -> list[tuple[int, int]]:
        index = {name: i for i, name in enumerate(self.keypoints)}
        return [(index[a], index[b]) for a, b in self.skeleton]

    def class_index(self, name: str) -> int:
        """Index of class ``name``; raises ``KeyError`` naming the known classes."""
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r}; known classes: {', '.join(self.classes)}") from None


def parse_skeleton(text: str, keypoints: list[str]) -> list[tuple[str, str]]:
    """Parse ``"1-2,2-3"`` (1-based indices, as in COCO) or ``"nose-left_eye,..."`` into name pairs."""
    edges: list[tuple[str, str]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        if raw.count("-") != 1:
            raise ValueError(f"skeleton edge {raw!r} must look like 1-2 or nose-left_eye")
        a, b = (side.strip() for side in raw.split("-"))
        edges.append((_keypoint_name(a, keypoints, raw), _keypoint_name(b, keypoints, raw)))
    return edges


def _keypoint_name(token: str, keypoints: list[str], edge: str) -> str:
    if token.isdigit():
        index = int(token)
        if not 1 <= index <= len(keypoints):
            raise ValueError(
                f"skeleton edge {edge!r}: index {index} is outside 1..{len(keypoints)} (indices are 1-based)"
            )
        return keypoints[index - 1]
    if token not in keypoints:
        raise ValueError(f"skeleton edge {edge!r}: unknown keypoint {token!r}")
    return token
