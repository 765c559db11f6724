"""The dashboard's models page in a real browser: versions with their gate and evaluation plots,
and promoting a version from the page moves its alias only with a valid token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from live_dashboard import TOKEN, live_server, open_page, screenshot, visit
from tiny_registry import classifier_project, evaluation_folder
from visionloop.evaluation.plots import plot_confusion_matrix
from visionloop.project import Project
from visionloop.registry import project_registry

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Two evaluated classifier versions, both approved; v1 is production; v2's evaluation
    drew its confusion matrix."""
    project = classifier_project(tmp_path)
    classes = list(project.config.labels.classes)
    path = evaluation_folder(project, 2) / "confusion_matrix.png"
    plot_confusion_matrix([[5, 1, 0], [2, 4, 1], [0, 1, 6]], classes, path)
    return project


def _production(project: Project) -> int:
    with project.open_catalog() as catalog:
        return project_registry(project, catalog).aliases()["production"]


@pytest.fixture
def page(browser: Any, project: Project) -> Iterator[Any]:
    with live_server(project) as url:
        context, opened, errors = open_page(browser, url)
        yield opened
        context.close()
    assert errors == [e for e in errors if "401" in e], errors  # the refused promotion's 401 only


def test_a_promotion_needs_a_valid_token(page: Any, project: Project) -> None:
    visit(page, "/models")
    v2 = page.locator("section.version[data-version='2']")
    assert "gate passed" in v2.inner_text()
    plots = v2.locator(".plots img")
    assert plots.count() >= 1
    playwright_api.expect(plots.first).to_have_js_property("complete", True)
    assert plots.first.evaluate("image => image.naturalWidth") > 0  # served, decoded
    screenshot(page, "models")

    page.fill("input[name='token']", "wrong-token")
    page.dispatch_event("input[name='token']", "change")
    v2.locator("select[name='alias']").select_option("production")
    v2.locator("button[data-action='promote']").click()
    playwright_api.expect(v2.locator(".status")).to_contain_text("refused (401)")
    assert _production(project) == 1

    page.fill("input[name='token']", TOKEN)
    page.dispatch_event("input[name='token']", "change")
    v2.locator("button[data-action='promote']").click()
    playwright_api.expect(page.locator(".summary")).to_contain_text("production -> v2")
    assert _production(project) == 2
