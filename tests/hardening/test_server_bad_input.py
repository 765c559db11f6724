"""The server fed the bad-image corpus and hostile strings: every bad image through ``/v1/predict``
(raw and multipart), the CVAT detector and the Label Studio backend's ``/predict`` (inline and
as a local file) answers 4xx naming it, never 5xx, within the bounds, and the server keeps
answering; hostile references, run ids, plot names and local-file paths are refused without
reading anything outside the project or the local-files root."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hardening.bounds import Bounds
from hardening.corpus_images import LIMIT, OVER_TEST_LIMIT_ONLY, image_corpus
from hardening.corpus_strings import HOSTILE, HUGE_NAMES, TRAVERSALS, UNICODE_NAMES
from hardening_tally import tally
from tiny_models import SCHEMAS, photos
from tiny_registry import classifier_project
from tiny_served import png
from visionloop.core.errors import ValidationError
from visionloop.formats.labelstudio import labeling_config
from visionloop.ingest import IngestOptions, ingest
from visionloop.project import Project
from visionloop.server import ServerSettings, create_app
from visionloop.server.ls_media import TaskImageReader
from visionloop.storage import Filesystem

pytestmark = pytest.mark.slow

TOKEN = "hardening-token-0123456789abcdef"  # noqa: S105  # a fixture token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = labeling_config(SCHEMAS["classifier"])
BAD = [case for case in image_corpus() if case.bad]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path, list[int]]]:
    root = tmp_path_factory.mktemp("served")
    project = classifier_project(root)
    files = root / "ls-files"
    files.mkdir()
    for case in BAD:
        (files / case.name).write_bytes(case.data)
    (root / "secret.png").write_bytes(png(photos(1)[0]))  # beside the root: must stay unread
    (files / "good.png").write_bytes(png(photos(1)[0]))
    items = _swapped_items(project, root / "gallery")
    settings = ServerSettings(
        token=TOKEN, poll_seconds=0.05, max_pixels=LIMIT, max_body_bytes=8_000_000, labelstudio_files=files
    )
    with TestClient(create_app(project, settings), raise_server_exceptions=False) as client:
        yield client, files, items


def _swapped_items(project: Project, folder: Path) -> list[int]:
    """Catalog items whose files were valid when ingested and are now the bad corpus images."""
    bad = [case for case in BAD if case.name not in OVER_TEST_LIMIT_ONLY]  # thumbnails: default limit
    paths = [folder / f"item_{index:03d}.png" for index in range(len(bad))]
    folder.mkdir()
    for index, path in enumerate(paths):  # distinct contents, or ingest would keep one of each
        path.write_bytes(png(np.full((8, 8, 3), (index % 256, index // 256, 7), np.uint8)))
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(folder)), IngestOptions(workers=1))
        ids = list(catalog.item_ids_for_uris([str(path) for path in paths]).values())
    for path, case in zip(paths, bad, strict=True):
        path.write_bytes(case.data)
    return ids


def _ls(client: TestClient, url: str) -> Any:
    body = {"tasks": [{"id": 7, "data": {"image": url}}], "label_config": CONFIG, "project": "1.1"}
    return client.post("/predict", json=body, headers=AUTH)


def test_each_bad_image_is_a_4xx_naming_it_on_every_predict_route(served: tuple[TestClient, Path]) -> None:
    client, _, _ = served
    routes = {
        "/v1/predict raw": lambda name, data: client.post(
            "/v1/predict", content=data, headers={**AUTH, "Content-Type": "image/jpeg"}
        ),
        "/v1/predict multipart": lambda name, data: client.post(
            "/v1/predict", files=[("images", (name, data, "image/jpeg"))], headers=AUTH
        ),
        "/v1/cvat/detector": lambda name, data: client.post(
            "/v1/cvat/detector", json={"image": base64.b64encode(data).decode()}, headers=AUTH
        ),
        "/predict data URL": lambda name, data: _ls(
            client, "data:image/jpeg;base64," + base64.b64encode(data).decode()
        ),
        "/predict local file": lambda name, data: _ls(client, f"/data/local-files/?d={quote(name)}"),
    }
    bounds, wrong = Bounds(), []
    for route, send in routes.items():
        for case in BAD:
            with bounds.check(f"{route} {case.name}"):
                answer = send(case.name, case.data)
            named = case.name if route in ("/v1/predict multipart",) else ""
            if (
                not 400 <= answer.status_code < 500
                or named not in answer.text
                or "detail" not in answer.json()
            ):
                wrong.append(f"{route} {case.name}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, wrong
    assert not bounds.over, (bounds.over, bounds.summary())
    print(bounds.summary())
    good = client.post(
        "/v1/predict", files=[("images", ("ok.png", png(photos(1)[0]), "image/png"))], headers=AUTH
    )
    assert good.status_code == 200, good.text  # still answering
    assert _ls(client, "/data/local-files/?d=good.png").status_code == 200
    tally("bad inputs refused: images (server routes)", len(BAD) * len(routes))
    tally("routes checked with bad input", len(routes))


def test_thumbnails_of_items_swapped_for_bad_files_are_4xx(
    served: tuple[TestClient, Path, list[int]],
) -> None:
    client, _, items = served
    bounds, wrong = Bounds(), []
    for item in items:
        with bounds.check(f"thumbnail of item {item}"):
            answer = client.get(f"/api/items/{item}/thumbnail", headers=AUTH)
        if not 400 <= answer.status_code < 500 or "item_" not in answer.text:
            wrong.append(
                f"item {item}: {answer.status_code} {answer.text[:200] if answer.status_code != 200 else ''}"
            )
    assert not wrong, wrong
    assert not bounds.over, (bounds.over, bounds.summary())
    tally("bad inputs refused: images (dashboard thumbnails of swapped files)", len(items))
    tally("routes checked with bad input", 1)


def test_hostile_references_run_ids_and_plot_names_are_refused(served: tuple[TestClient, Path]) -> None:
    client, _, _ = served
    wrong, tried = [], 0
    for text in HOSTILE:
        segment = quote(text, safe="")
        requests = [
            ("GET", f"/v1/models/{segment}", None),
            ("POST", f"/v1/models/{segment}/promote", {"alias": "staging"}),
            ("POST", "/v1/models/1/promote", {"alias": text}),
            ("POST", f"/v1/aliases/{segment}/rollback", {}),
            ("GET", f"/api/runs/{segment}", None),
            ("GET", f"/api/runs/{segment}/log", None),
            ("GET", f"/api/models/1/plots/{segment}.png", None),
            ("GET", f"/api/models/{segment}/plots/confusion.png", None),
            ("GET", f"/v1/predict?model={segment}", None),
        ]
        for method, url, body in requests:
            answer = client.request(method, url, json=body, headers=AUTH)
            tried += 1
            if not 400 <= answer.status_code < 500 or "root:" in answer.text:
                wrong.append(f"{method} {url[:80]}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, wrong
    assert client.get("/v1/models/1", headers=AUTH).status_code == 200
    tally("hostile strings refused", tried)
    tally("routes checked with bad input", 9)


def test_hostile_local_file_paths_never_read_outside_the_root(served: tuple[TestClient, Path]) -> None:
    """``secret.png`` beside the root is a valid image: reading it would answer 200."""
    client, files, _ = served
    wrong = []
    for text in TRAVERSALS + HUGE_NAMES:
        for encoded in (quote(text, safe=""), quote(text, safe="/\\:"), quote(quote(text, safe=""), safe="")):
            answer = _ls(client, f"/data/local-files/?d={encoded}")
            if not 400 <= answer.status_code < 500:
                wrong.append(f"{text[:60]!r} as {encoded[:60]}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, wrong
    tally("hostile strings refused", len(TRAVERSALS + HUGE_NAMES) * 3)

    served_names = 0
    for name in UNICODE_NAMES:  # legitimate names: the file under the root is read
        try:
            (files / f"{name}.png").write_bytes(png(photos(1)[0]))
        except OSError:
            continue
        answer = _ls(client, f"/data/local-files/?d={quote(name + '.png', safe='')}")
        assert answer.status_code == 200, (name, answer.text)
        served_names += 1
    assert served_names >= len(UNICODE_NAMES) - 1
    tally("unicode names handled: LS local files", served_names)


@pytest.mark.parametrize("name", ["n" * 300, "é" * 200, "a/" * 2_100 + "x.png"])
def test_regression_a_local_file_name_too_long_for_the_file_system_is_a_4xx(
    tmp_path: Path, name: str
) -> None:
    """Resolving such a name raised OSError (ENAMETOOLONG) out of the reader: a 500."""
    reader = TaskImageReader(ServerSettings(token=TOKEN, labelstudio_files=tmp_path))
    with pytest.raises(ValidationError, match="cannot read the local file"):
        reader.read(f"/data/local-files/?d={quote(name)}")
