"""A simulated annotator: hidden ground truth revealed as human labels when the loop asks.

Active-learning experiments need a human who labels exactly the items selected and nothing
else. The oracle holds the true labels of a labelled dataset (any importable format) and writes
one as a human label, annotator ``oracle``, only when an item is revealed; the loop counts every
reveal as a label paid for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from visionloop.catalog import Catalog
from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema
from visionloop.formats.transfer import read_item_labels

__all__ = ["ORACLE_ANNOTATOR", "Oracle"]

ORACLE_ANNOTATOR = "oracle"


@dataclass(frozen=True)
class Oracle:
    truth: dict[int, Label]
    source: str

    @classmethod
    def from_file(
        cls, catalog: Catalog, format_name: str, path: Path, image_root: str, schema: LabelSchema
    ) -> Oracle:
        """Truth for the catalog's items from a labels file whose image names are relative to
        ``image_root``."""
        truth, report = read_item_labels(catalog, format_name, path, image_root=image_root, schema=schema)
        if not truth:
            found = f"{report.records} records, {len(report.images_not_found)} images not in the catalog"
            raise ValidationError(
                f"{path}: gives no labels for the project's items under {image_root} ({found})"
            )
        return cls(truth, str(path))

    @classmethod
    def merged(cls, oracles: Sequence[Oracle]) -> Oracle:
        """One oracle knowing what any of ``oracles`` knows (the first one wins on overlaps)."""
        truth: dict[int, Label] = {}
        for oracle in reversed(oracles):
            truth.update(oracle.truth)
        return cls(truth, ", ".join(oracle.source for oracle in oracles))

    def knows(self, item_id: int) -> bool:
        return item_id in self.truth

    def reveal(self, catalog: Catalog, item_ids: Iterable[int], run_id: str | None) -> list[int]:
        """Write the true labels of ``item_ids`` as human labels; returns the items revealed
        (those the oracle has no label for are skipped)."""
        known = [item for item in item_ids if item in self.truth]
        catalog.add_annotations(
            [(item, self.truth[item], Provenance.human(ORACLE_ANNOTATOR)) for item in known], run_id=run_id
        )
        return known
