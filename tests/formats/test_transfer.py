"""Imports land on the right catalog items wherever the images live (disk or S3, SQLite or PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Tree
from images import rgb_png
from visionloop.catalog import Catalog
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.transfer import export_labels, import_labels
from visionloop.ingest import ingest

SCHEMA = LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog"])


def test_import_onto_items_in_any_storage_then_export(catalog: Catalog, tree: Tree, tmp_path: Path) -> None:
    tree.write("x/a.png", rgb_png(40, 30, seed=1))
    tree.write("y/a.png", rgb_png(40, 30, seed=2))
    coco = {
        "images": [
            {"id": 1, "file_name": "x/a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "y/a.png", "width": 40, "height": 30},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 6, 7, 8], "score": 0.25},
        ],
    }
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(coco))

    def ingest_root(_root: str) -> None:
        ingest(catalog, tree.filesystem)

    report = import_labels(
        catalog,
        "coco",
        labels,
        image_root=tree.root,
        schema=SCHEMA,
        ingest_images=ingest_root,
    )

    assert (report.records, report.rejected, report.images_not_found) == (6, 0, [])
    assert (report.annotations_written, report.predictions_written) == (1, 1)
    items = {item.uri: item.id for item in catalog.iter_items()}
    current = catalog.current_annotations()
    [annotation] = current.values()
    assert annotation.item_id == items[tree.uri("x/a.png")]
    assert annotation.provenance.kind is ProvenanceKind.HUMAN
    predicted = catalog.latest_predictions([items[tree.uri("y/a.png")]])
    assert predicted[items[tree.uri("y/a.png")]][2] == 0.25

    out = export_labels(catalog, "coco", tmp_path / "out.json", schema=SCHEMA)
    exported = json.loads((tmp_path / "out.json").read_text())
    names = sorted(image["file_name"] for image in exported["images"])
    assert len(names) == 2 and len(set(names)) == 2 and all(n.endswith("a.png") for n in names)
    assert out.labels == 1 and catalog.get_snapshot(out.snapshot).item_count == 2
