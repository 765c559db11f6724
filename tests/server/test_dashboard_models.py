"""The dashboard's models page in a real browser: versions with their gate, approvals, evaluation
plots and auto-label risk-coverage; approving and promoting a version from the page moves its
alias only with a valid token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live_dashboard import TOKEN, live_server, open_page, screenshot, visit
from tiny_registry import classifier_project, evaluation_folder
from visionloop.active.calibration import risk_coverage
from visionloop.evaluation.plots import plot_confusion_matrix
from visionloop.project import Project
from visionloop.registry import project_registry
from visionloop.tasks.model_files import model_version

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Two evaluated classifier versions, v1 approved and in production; v2 not approved yet,
    its evaluation drew a confusion matrix and an auto-label run calibrated on its predictions."""
    project = classifier_project(tmp_path, approved=(1,))
    classes = list(project.config.labels.classes)
    path = evaluation_folder(project, 2) / "confusion_matrix.png"
    plot_confusion_matrix([[5, 1, 0], [2, 4, 1], [0, 1, 6]], classes, path)
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.3, 1.0, 400)
    correct = rng.uniform(0, 1, 400) < scores  # more confident, more often right
    with project.open_catalog() as catalog:
        v2 = project_registry(project, catalog).get(2)
        name = model_version(v2.run_id, v2.weights_sha256)
        run = catalog.start_run("autolabel", {"target_accuracy": 0.9}, {"model_version": name})
        outputs = {"model_version": name, "accepted": 120, "candidates": 500, "coverage": 0.24}
        catalog.finish_run(
            run, {**outputs, "calibration_items": 400, "risk_coverage": risk_coverage(scores, correct)}
        )
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
    refused = [e for e in errors if "401" in e or "409" in e or "422" in e]
    assert errors == refused, errors  # only the refusals the test asks for


def test_approving_and_promoting_need_a_valid_token(page: Any, project: Project) -> None:
    visit(page, "/models")
    v2 = page.locator("section.version[data-version='2']")
    assert "gate passed" in v2.inner_text()
    assert (
        "approved for production by rui"
        in page.locator("section.version[data-version='1'] .approvals").inner_text()
    )
    assert "no approval decisions yet" in v2.locator(".approvals").inner_text()
    plots = v2.locator(".plots img")
    assert plots.count() >= 1
    playwright_api.expect(plots.first).to_have_js_property("complete", True)
    assert plots.first.evaluate("image => image.naturalWidth") > 0  # served, decoded
    chart = v2.locator("figure.risk-coverage")
    assert chart.locator("polyline").count() == 3  # observed error, its upper bound, the allowed error
    assert "120 of 500 pool items accepted" in chart.inner_text()
    screenshot(page, "models")

    v2.locator("select[name='alias']").select_option("production")
    page.fill("input[name='token']", "wrong-token")
    page.dispatch_event("input[name='token']", "change")
    v2.locator("button[data-action='approve']").click()
    playwright_api.expect(v2.locator(".status")).to_contain_text("refused (401)")
    assert _decisions(project) == {}

    page.fill("input[name='token']", TOKEN)
    page.dispatch_event("input[name='token']", "change")
    v2.locator("button[data-action='promote']").click()  # not approved yet: the registry refuses
    playwright_api.expect(v2.locator(".status")).to_contain_text("needs an approval")
    assert _production(project) == 1

    v2.locator("button[data-action='approve']").click()
    playwright_api.expect(v2.locator(".approvals")).to_contain_text("approved for production by dashboard")
    assert _decisions(project) == {"production": "approve"}
    assert _production(project) == 1  # an approval alone moves nothing

    v2 = page.locator("section.version[data-version='2']")  # the page was drawn again
    v2.locator("select[name='alias']").select_option("production")
    v2.locator("button[data-action='promote']").click()
    playwright_api.expect(page.locator(".summary")).to_contain_text("production -> v2")
    assert _production(project) == 2


def _decisions(project: Project) -> dict[str, str]:
    with project.open_catalog() as catalog:
        return {
            alias: event.action
            for alias, event in project_registry(project, catalog).decisions().get(2, {}).items()
        }
