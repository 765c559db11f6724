"""The gallery's pages: every item once in id order, filters that narrow them, an index that
follows the catalog's changes (new labels, revoked auto labels, split moves)."""

from __future__ import annotations

import numpy as np
import pytest

from tiny_items import add_items
from visionloop.catalog import Catalog
from visionloop.catalog.browse import GalleryFilter, gallery_page, payload_classes
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance


def _walk(catalog: Catalog, chosen: GalleryFilter | None = None, limit: int = 2) -> list[int]:
    seen: list[int] = []
    after = None
    while True:
        page = gallery_page(catalog, chosen, after=after, limit=limit)
        seen += [entry.item.id for entry in page.entries]
        assert page.total >= len(seen)
        if page.next_after is None:
            assert page.total == len(seen)
            return seen
        after = page.next_after


def _labelled(catalog: Catalog) -> list[int]:
    """Five items: human cat (model agrees), human dog (model says cat), model cat, auto dog,
    and one with nothing."""
    items = add_items(catalog, 5)
    human_cat, human_dog, model_cat, auto_dog, _ = items
    catalog.add_annotation(human_cat, ClassLabel("cat"), Provenance.human("ann"))
    catalog.add_annotation(human_dog, ClassLabel("dog"), Provenance.human("ann"))
    catalog.add_annotation(model_cat, ClassLabel("cat"), Provenance.model("m1", 0.6))
    run = catalog.start_run("autolabel", {}, {})
    catalog.add_annotation(auto_dog, ClassLabel("dog"), Provenance.auto("m1", run, 0.97), run_id=run)
    catalog.finish_run(run, {})
    catalog.add_predictions(
        "m1",
        [
            (human_cat, ClassLabel("cat", 0.9), 0.9),
            (human_dog, ClassLabel("cat", 0.55), 0.55),
            (model_cat, ClassLabel("cat", 0.6), 0.6),
            (auto_dog, ClassLabel("dog", 0.97), 0.97),
        ],
    )
    return items


def test_unfiltered_pages_show_every_item_once_in_id_order(catalog: Catalog) -> None:
    items = add_items(catalog, 7)
    assert _walk(catalog) == sorted(items)
    first = gallery_page(catalog, limit=3)
    assert first.total == 7 and len(first.entries) == 3 and first.next_after == sorted(items)[2]
    assert first.entries[0].item.uri.endswith(".png") and first.entries[0].annotation is None


def test_filters_narrow_the_gallery(catalog: Catalog) -> None:
    human_cat, human_dog, model_cat, auto_dog, bare = _labelled(catalog)
    by = lambda **values: set(_walk(catalog, GalleryFilter(**values)))  # noqa: E731

    assert by(provenance="human") == {human_cat, human_dog}
    assert by(provenance="auto") == {auto_dog} and by(provenance="none") == {bare}
    assert by(classes=frozenset({"cat"})) == {human_cat, model_cat}
    assert by(classes=frozenset({"cat", "dog"}), provenance="human") == {human_cat, human_dog}
    assert by(max_confidence=0.6) == {human_dog, model_cat}  # the uncertain ones
    assert by(min_confidence=0.95) == {auto_dog}
    assert by(disagreement=True) == {human_dog}
    assert by(split="train") == {human_cat, human_dog, model_cat, auto_dog, bare}
    assert by(split="val") == set()
    page = gallery_page(catalog, GalleryFilter(disagreement=True))
    [entry] = page.entries
    assert entry.annotation is not None and entry.annotation.label == ClassLabel("dog")
    assert entry.prediction is not None and entry.prediction[1] == ClassLabel("cat", 0.55)


def test_the_index_follows_new_labels_revocations_and_split_moves(catalog: Catalog) -> None:
    human_cat, human_dog, model_cat, auto_dog, bare = _labelled(catalog)
    humans = GalleryFilter(provenance="human")
    assert set(_walk(catalog, humans)) == {human_cat, human_dog}

    catalog.add_annotation(bare, ClassLabel("cat"), Provenance.human("ann"))
    assert set(_walk(catalog, humans)) == {human_cat, human_dog, bare}
    [run] = [r.id for r in catalog.list_runs(kind="autolabel")]
    catalog.revoke_run(run, "audit failed")
    assert set(_walk(catalog, GalleryFilter(provenance="none"))) == {auto_dog}
    catalog.assign_split([model_cat], "val")
    assert _walk(catalog, GalleryFilter(split="val", classes=frozenset({"cat"}))) == [model_cat]


def test_objects_count_by_the_classes_of_their_boxes(catalog: Catalog) -> None:
    [item] = add_items(catalog, 1)
    boxes = np.array([[0, 0, 4, 4], [1, 1, 5, 5]], dtype=float)
    catalog.add_annotation(item, ObjectLabels(boxes, ("cat", "bird")), Provenance.human("ann"))
    assert _walk(catalog, GalleryFilter(classes=frozenset({"bird"}))) == [item]
    assert payload_classes(ObjectLabels(boxes, ("cat", "bird")).to_dict()) == {"cat", "bird"}


@pytest.mark.parametrize(
    ("values", "message"),
    [({"provenance": "robot"}, "unknown provenance"), ({"max_confidence": 1.5}, "within")],
)
def test_bad_filters_are_refused_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GalleryFilter(**values)  # type: ignore[arg-type]


def test_page_sizes_are_bounded(catalog: Catalog) -> None:
    with pytest.raises(ValidationError, match="1 to 500"):
        gallery_page(catalog, limit=0)
