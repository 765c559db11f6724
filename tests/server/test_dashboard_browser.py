"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a running
server: pages render real data, a known item's box is drawn on its pixels, the filters change
the gallery. Screenshots of each page land in build/screenshots/dashboard/ for review."""

from __future__ import annotations

import colorsys
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from pydantic import BaseModel

from live_dashboard import TOKEN, live_server, open_page, screenshot, visit
from tiny_projects import make_project
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance
from visionloop.core.schema import TaskType
from visionloop.formats.masks import rle_decode
from visionloop.pipelines.loop import LoopReport, LoopRound
from visionloop.pipelines.runner import Pipeline, Step, StepContext, StepWaiting, run_pipeline
from visionloop.project import Project

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Detection scenes; one pool item pre-labelled by a model, one human label with a known box."""
    project = make_project(tmp_path_factory.mktemp("dash"), TaskType.DETECTION, per_split=4, unlabeled=3)
    with project.open_catalog() as catalog:
        annotated = catalog.annotated_item_ids()
        pool = sorted(item.id for item in catalog.iter_items() if item.id not in annotated)
        catalog.add_annotation(pool[0], ClassLabel("box"), Provenance.model("m1", 0.4))
        known = ObjectLabels(np.array([[8.0, 10.0, 40.0, 30.0]]), ("bar",))
        catalog.add_annotation(pool[1], known, Provenance.human("reviewer"))
    return project


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[str]:
    with live_server(project) as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context, opened, errors = open_page(browser, server)
    yield opened
    context.close()
    assert errors == [], errors  # no script errors, no refused (CSP) loads


def test_the_overview_shows_the_catalogs_counts(page: Any, project: Project) -> None:
    rounds = [
        LoopRound(n, labels, "t", "e", value, {}) for n, (labels, value) in enumerate(((10, 0.4), (20, 0.6)))
    ]
    with project.open_catalog() as catalog:
        run = catalog.start_run("loop", {}, {})
        catalog.finish_run(
            run, LoopReport(run, "margin", "detection", "map", pool=40, rounds=rounds).to_dict()
        )
    visit(page, "/overview")
    curve = page.locator("svg.learning-curve polyline[data-series='map']")
    assert len(str(curve.get_attribute("points")).split()) == 2  # one point per round
    assert page.locator("svg.progress polyline[data-series='human']").count() == 1
    assert page.locator("[data-figure='items'] .value").inner_text() == "15"
    assert page.locator("[data-figure='human'] .value").inner_text() == "13"
    assert page.locator("[data-figure='model'] .value").inner_text() == "1"
    assert "tiny-detection" in page.locator("h1").inner_text()
    screenshot(page, "overview")


def test_the_dashboard_asks_for_the_token_before_it_shows_anything(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, server, signed_in=False)
    visit(page, "/overview")
    assert page.locator("#page").get_attribute("data-page") == "sign-in"
    assert page.locator(".card").count() == 0
    page.fill("input[name='sign-in-token']", "not-the-token-0123456789")
    page.click("form.sign-in button")
    playwright_api.expect(page.locator("form.sign-in .status")).to_contain_text("refused")
    screenshot(page, "sign-in")
    page.fill("input[name='sign-in-token']", TOKEN)
    page.click("form.sign-in button")
    playwright_api.expect(page.locator(".card[data-figure='items']")).to_be_visible()
    visit(page, "/gallery")  # thumbnails load with the session cookie alone
    playwright_api.expect(page.locator(".tile img").first).to_have_js_property("complete", True)
    assert page.locator(".tile img").first.evaluate("image => image.naturalWidth") > 0
    context.close()
    assert errors and all("401" in error for error in errors), errors  # only the refusals


def test_filters_change_the_gallery(page: Any) -> None:
    visit(page, "/gallery")
    assert page.locator(".tile").count() == 15
    assert page.locator(".summary").inner_text().startswith("15 items match")
    page.select_option("select[name='provenance']", "none")
    page.click("form.filters button[type='submit']")
    playwright_api.expect(page.locator(".tile")).to_have_count(1)  # the page's CSP forbids eval()
    assert page.locator(".summary").inner_text().startswith("1 items match")
    assert page.locator(".tile .badge").inner_text() == "none"
    visit(page, "/gallery?class=bar&provenance=human")
    assert page.locator(".summary").inner_text().startswith("7 items match")
    screenshot(page, "gallery")


def _rgb(hsl: str) -> np.ndarray:
    hue, saturation, lightness = (float(x) for x in re.findall(r"[\d.]+", hsl))
    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness / 100, saturation / 100)
    return np.array([red, green, blue]) * 255


def test_a_known_box_is_drawn_on_its_pixels(page: Any, project: Project) -> None:
    with project.open_catalog() as catalog:
        [item] = [
            a.item_id for a in catalog.current_annotations().values() if a.provenance.annotator == "reviewer"
        ]
        record = catalog.get_item(item)
    visit(page, f"/items/{item}")
    picture = page.locator(".picture")
    playwright_api.expect(page.locator(".picture img")).to_have_js_property("complete", True)
    shot = np.asarray(Image.open(io.BytesIO(picture.screenshot())).convert("RGB"), dtype=float)
    scale_x, scale_y = shot.shape[1] / record.width, shot.shape[0] / record.height
    stroke = _rgb(page.locator(".picture rect").get_attribute("stroke"))
    # the box [8, 10, 40, 30]: its left edge at x = 8, halfway down; its top edge at y = 10
    for x, y in ((8 * scale_x, 20 * scale_y), (24 * scale_x, 10 * scale_y)):
        near = shot[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3)
        assert np.abs(near - stroke).sum(axis=1).min() < 60, (x, y, near, stroke)
    inside = shot[int(20 * scale_y), int(24 * scale_x)]
    assert np.abs(inside - stroke).sum() > 150  # not filled: the picture shows through
    assert (
        page.locator("table tbody tr").count() >= 1 and "reviewer" in page.locator("table").last.inner_text()
    )
    screenshot(page, "item")


class _NoParams(BaseModel):
    pass


def _wait(ctx: StepContext) -> dict[str, Any]:
    raise StepWaiting("waiting for an approval")


def test_runs_show_a_pipeline_its_steps_progress_and_log(page: Any, project: Project) -> None:
    steps = (Step("count", lambda ctx: {"items": 15}), Step("approval", _wait))
    waiting = run_pipeline(project, Pipeline("review", "count, then wait", _NoParams, steps), {})
    visit(page, "/runs")
    row = page.locator(f"tr[data-run='{waiting.run_id}']")
    assert "review" in row.inner_text() and "waiting" in row.inner_text()
    screenshot(page, "runs")
    row.locator("a").click()
    playwright_api.expect(page.locator("table.steps tr[data-step='approval']")).to_contain_text("waiting")
    assert "succeeded" in page.locator("table.steps tr[data-step='count']").inner_text()
    assert page.locator("p.progress").inner_text().strip() == "1 of 2 steps"
    log = page.locator("pre.log").inner_text()
    assert "[1/2] count" in log and "waiting: waiting for an approval" in log
    screenshot(page, "run")


@pytest.mark.parametrize("counts", ["list", "compressed"])
def test_masks_tint_their_pixels_and_nothing_else(browser: Any, tmp_path: Path, counts: str) -> None:
    project = make_project(tmp_path, TaskType.SEGMENTATION, per_split=1)
    with project.open_catalog() as catalog:
        item, annotation = next(iter(catalog.current_annotations().items()))
        width = catalog.get_item(item).width
        label = annotation.label
        if counts == "compressed":  # the same mask in COCO's compact string form
            packed = coco_mask.encode(np.asfortranarray(rle_decode(label.masks[0]).astype(np.uint8)))
            mask = {"size": packed["size"], "counts": packed["counts"].decode()}
            label = ObjectLabels(label.boxes, label.class_names, masks=(mask,))
            catalog.add_annotation(item, label, Provenance.human("reviewer"))
    [[x1, y1, x2, y2]] = label.boxes.tolist()  # the scene's mask fills its box
    with live_server(project) as url:
        context, page, errors = open_page(browser, url)
        visit(page, f"/items/{item}")
        playwright_api.expect(page.locator(".picture image.mask")).to_have_count(1)
        picture = page.locator(".picture")
        playwright_api.expect(picture.locator("img")).to_have_js_property("complete", True)
        shown = np.asarray(Image.open(io.BytesIO(picture.screenshot())).convert("RGB"), dtype=float)
        screenshot(page, f"item-mask-{counts}")
        picture.locator("svg").evaluate("layer => { layer.style.display = 'none'; }")
        bare = np.asarray(Image.open(io.BytesIO(picture.screenshot())).convert("RGB"), dtype=float)
        context.close()
    assert errors == [], errors
    scale = shown.shape[1] / width
    inside = (int((y1 + y2) / 2 * scale), int((x1 + x2) / 2 * scale))
    outside = (int((y2 + 6) * scale), int((x2 + 6) * scale)) if y2 + 6 < width else (2, 2)
    assert np.abs(shown[inside] - bare[inside]).sum() > 40  # the mask tints the object
    assert np.abs(shown[outside] - bare[outside]).sum() < 12  # and leaves the background alone


def test_keypoints_and_their_skeleton_land_on_their_pixels(browser: Any, tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.KEYPOINTS, per_split=1)
    with project.open_catalog() as catalog:
        item, annotation = next(iter(catalog.current_annotations().items()))
        width = catalog.get_item(item).width
        schema = catalog.get_schema()
        assert schema is not None
        catalog.set_schema(schema.model_copy(update={"skeleton": [("right_top", "center")]}))
    points = annotation.label.keypoints[0]  # left_top, right_top, center of the scene's box
    with live_server(project) as url:
        context, page, errors = open_page(browser, url)
        visit(page, f"/items/{item}")
        picture = page.locator(".picture")
        playwright_api.expect(picture.locator("circle.keypoint")).to_have_count(3)
        playwright_api.expect(picture.locator("line.bone")).to_have_count(1)
        playwright_api.expect(picture.locator("img")).to_have_js_property("complete", True)
        fill = _rgb(picture.locator("circle.keypoint").first.get_attribute("fill"))
        shown = np.asarray(Image.open(io.BytesIO(picture.screenshot())).convert("RGB"), dtype=float)
        screenshot(page, "item-keypoints")
        context.close()
    assert errors == [], errors
    scale = shown.shape[1] / width
    for x, y, _ in points:
        near = shown[int(y * scale) - 1 : int(y * scale) + 2, int(x * scale) - 1 : int(x * scale) + 2]
        assert np.abs(near.reshape(-1, 3) - fill).sum(axis=1).min() < 60, (x, y)

    def midway(a: int, b: int) -> np.ndarray:  # the 3x3 pixels halfway between two keypoints
        x, y = int((points[a][0] + points[b][0]) / 2 * scale), int((points[a][1] + points[b][1]) / 2 * scale)
        return shown[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)

    assert np.abs(midway(1, 2) - fill).sum(axis=1).min() < 60  # the bone right_top-center is drawn
    assert np.abs(midway(0, 2) - fill).sum(axis=1).min() > 60  # and no bone joins left_top to center
