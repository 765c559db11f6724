"""The REST server on a tiny project: predictions in core JSON for every body form, 4xx (never
5xx) for bad requests, the token on every route but health, and the served model following
its alias as it is promoted and rolled back."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from hardening_tally import tally
from tiny_models import photos
from tiny_registry import classifier_project
from tiny_served import png
from visionloop.project import Project
from visionloop.server import ServerSettings, create_app
from visionloop.tasks.registry import load_trained_model

TOKEN = "test-token-0123456789abcdef"  # noqa: S105  # a fixture token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The only routes open without the token: health answers, the dashboard's page and assets (no
# project data in them), and signing in and out.
OPEN = {
    ("/v1/health", "GET"),
    ("/health", "GET"),
    ("/", "GET"),
    ("/api/session", "POST"),
    ("/api/session", "DELETE"),
}
WRONG = (
    {},
    {"Authorization": "Bearer wrong-token-0123456789"},
    {"Authorization": "Token wrong-token-0123456789"},
    {"Authorization": "Basic " + base64.b64encode(b"labelstudio:wrong-token-000000").decode()},
    {"Authorization": "Basic Og=="},
    {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Two registered classifier versions; v1 is production, v2 only approved."""
    return classifier_project(tmp_path)


@pytest.fixture
def client(project: Project) -> Iterator[TestClient]:
    settings = ServerSettings(token=TOKEN, poll_seconds=0.05, max_body_bytes=2_000_000, max_pixels=1_000_000)
    with TestClient(create_app(project, settings), headers=AUTH) as client:
        yield client


def test_predict_answers_core_json_from_the_production_version(client: TestClient, project: Project) -> None:
    images = photos(3)
    expected = load_trained_model(project.root / "m1").predict(images)
    files = [("images", (f"p{i}.png", png(image), "image/png")) for i, image in enumerate(images)]
    answer = client.post("/v1/predict", files=files)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"]["version"] == 1 and body["model"]["alias"] == "production"
    assert [p["image"] for p in body["predictions"]] == ["p0.png", "p1.png", "p2.png"]
    assert [p["label"]["class_name"] for p in body["predictions"]] == [
        label.to_dict()["class_name"] for label in expected
    ]
    assert body["predictions"][0]["width"] == images[0].shape[1]


def test_json_base64_and_raw_bodies_and_an_explicit_version(client: TestClient) -> None:
    image = png(photos(1)[0])
    encoded = base64.b64encode(image).decode()
    by_json = client.post(
        "/v1/predict", json={"images": [encoded, {"base64": encoded, "name": "x"}], "model": "v2"}
    )
    assert by_json.status_code == 200, by_json.text
    assert by_json.json()["model"]["version"] == 2 and by_json.json()["predictions"][1]["image"] == "x"
    raw = client.post("/v1/predict?model=production", content=image, headers={"Content-Type": "image/png"})
    assert raw.status_code == 200 and raw.json()["model"]["name"] == "v1"


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"content": b"not an image", "headers": {"Content-Type": "image/jpeg"}}, 422, "cannot decode"),
        ({"json": {"images": ["%%%"]}}, 422, "not valid base64"),
        ({"json": {"images": "abc"}}, 422, "a list"),
        ({"json": {"images": []}}, 422, "no images"),
        ({"content": b"x", "headers": {"Content-Type": "text/plain"}}, 422, "unsupported content type"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 422, "not valid JSON"),
        ({"content": b"\0" * 2_000_001, "headers": {"Content-Type": "image/png"}}, 413, "byte limit"),
        (
            {"json": {"images": [base64.b64encode(png(np.zeros((1100, 1000, 3), np.uint8))).decode()]}},
            422,
            "pixel",
        ),
        (
            {"json": {"images": [base64.b64encode(png(photos(1)[0])).decode()], "model": "nightly"}},
            404,
            "alias",
        ),
        (
            {"json": {"images": [base64.b64encode(png(photos(1)[0])).decode()], "model": "../m1"}},
            422,
            "alias",
        ),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(
    client: TestClient, kwargs: dict, status: int, says: str
) -> None:
    answer = client.post("/v1/predict", **kwargs)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]


def test_health_models_and_metrics(client: TestClient) -> None:
    client.post("/v1/predict", content=png(photos(1)[0]), headers={"Content-Type": "image/png"})
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["aliases"] == {"production": 1} and health["loaded"] == [1]
    versions = client.get("/v1/models").json()["versions"]
    assert [(v["version"], v["loaded"]) for v in versions] == [(2, False), (1, True)]
    assert client.get("/v1/models/production").json()["version"] == 1
    text = client.get("/metrics").text
    assert 'visionloop_predicted_images_total{runtime="torch",version="v1"} 1.0' in text
    assert 'visionloop_requests_total{method="POST",route="/v1/predict",status="200"}' in text


def test_the_served_model_follows_its_alias(client: TestClient) -> None:
    image = {"content": png(photos(1)[0]), "headers": {"Content-Type": "image/png"}}

    def served() -> int:
        return int(client.post("/v1/predict", **image).json()["model"]["version"])

    def wait_for(version: int) -> None:
        deadline = time.monotonic() + 10
        while served() != version:
            assert time.monotonic() < deadline, f"the server did not move to v{version}"

    assert served() == 1
    promoted = client.post("/v1/models/v2/promote", json={"alias": "production", "by": "ci"}, headers=AUTH)
    assert promoted.status_code == 200, promoted.text
    wait_for(2)
    back = client.post("/v1/aliases/production/rollback", json={"reason": "regression"}, headers=AUTH)
    assert back.status_code == 200 and back.json()["version"] == 1
    wait_for(1)
    assert client.get("/v1/health").json()["aliases"] == {"production": 1}


def _operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (path template, method) the app routes, documented or not (FastAPI keeps included
    routers whole, so they are walked with their prefixes)."""
    contexts = iter_route_contexts(client.app.router.routes)  # type: ignore[attr-defined]
    return [
        (context.route.path, method)
        for context in contexts
        if isinstance(context.route, APIRoute)
        for method in context.route.methods
    ]


def _path(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def test_every_route_but_health_refuses_a_missing_or_wrong_token(client: TestClient) -> None:
    guarded = [(path, method) for path, method in _operations(client) if (path, method) not in OPEN]
    assert {path for path, _ in guarded} >= {
        "/v1/predict",
        "/v1/models",
        "/v1/models/{reference}/promote",
        "/v1/aliases/{alias}/rollback",
        "/v1/cvat/detector",
        "/predict",
        "/setup",
        "/webhook",
        "/metrics",
        "/api/overview",
        "/api/gallery",
        "/api/items/{item_id}/thumbnail",
        "/api/runs/{run_id}/log",
    }
    bare = TestClient(client.app)  # no token, no cookie
    for template, method in guarded:
        path = _path(
            template, "1" if "_id" in template else "v1" if "reference" in template else "production"
        )
        for headers in WRONG:
            answer = bare.request(method, path, json={"alias": "staging", "reason": "x"}, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert "token" in answer.json()["detail"]
    tally("routes checked: refuse a missing or wrong token", len(guarded))
    assert client.get("/v1/health").json()["aliases"] == {"production": 1}  # nothing changed


def test_the_dashboard_session_cookie_opens_reads_only(client: TestClient) -> None:
    browser = TestClient(client.app)
    assert browser.post("/api/session", json={"token": "wrong-token-0123456789"}).status_code == 401
    assert "visionloop_session" not in browser.cookies
    assert browser.get("/api/overview").status_code == 401
    signed_in = browser.post("/api/session", json={"token": TOKEN})
    assert signed_in.status_code == 200
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN.lower() not in cookie
    reads = [
        (path, method)
        for path, method in _operations(client)
        if method == "GET" and (path, method) not in OPEN
    ]
    for template, _ in reads:
        answer = browser.get(_path(template, "1" if "_id" in template else "v1"))
        assert answer.status_code != 401, (template, answer.text)
    changes = [
        (path, method)
        for path, method in _operations(client)
        if method != "GET" and (path, method) not in OPEN
    ]
    for template, method in changes:  # a cross-site page cannot spend the cookie on a change
        answer = browser.request(
            method, _path(template, "v1" if "reference" in template else "production"), json={}
        )
        assert answer.status_code == 401, (method, template)
    tally("routes checked: session cookie reads only", len(reads) + len(changes))
    browser.delete("/api/session")
    assert browser.get("/api/overview").status_code == 401


@pytest.mark.parametrize(
    "value", ["..", "%2e%2e", "..%2f..%2fetc", "%2Fetc%2Fpasswd", "C:%5Cwindows", "v1%00", "...."]
)
def test_path_parameters_refuse_traversal_strings(client: TestClient, value: str) -> None:
    with_parameters = [(path, method) for path, method in _operations(client) if "{" in path]
    assert len(with_parameters) >= 4
    for template, method in with_parameters:
        answer = client.request(
            method, _path(template, value), json={"alias": "staging", "reason": "x"}, headers=AUTH
        )
        assert 400 <= answer.status_code < 500, (method, template, value, answer.status_code)
