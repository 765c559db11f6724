"""DeepLabCut projects: single- and multi-animal round trips (folder and zip), CSV rejections,
and hostile archives and project files that must never crash, escape or run code."""

from __future__ import annotations

import io
import os
import pickle
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from strategies import label_sets

from visionloop.core.errors import VisionloopError
from visionloop.core.labels import ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats import deeplabcut
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

DLC = get_format("deeplabcut")
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DLC_NAMES = [
    "labeled-data/reach/img000.png",
    "labeled-data/reach/img001.png",
    "labeled-data/walk/img0042.png",
    "labeled-data/walk 2/frame 7.png",
]


# -- strategies and comparison ----------------------------------------------------------------
def _human_objects(image: LabeledImage) -> ObjectLabels:
    label = image.annotations[0].label
    assert isinstance(label, ObjectLabels) and label.keypoints is not None
    return label


def _single_animal(labels: LabelSet) -> LabelSet:
    """A single-animal project has at most one (unnamed) animal per frame."""
    for image in labels.images:
        label = _human_objects(image)
        first = ObjectLabels(label.boxes[:1], label.class_names[:1], keypoints=label.keypoints[:1])  # type: ignore[index]
        image.annotations = [Annotation(first, image.annotations[0].provenance)]
    return labels


@st.composite
def multi_animal_sets(draw: st.DrawFn) -> LabelSet:
    """Individuals ``individual<N>``; optionally the last object is ``single`` holding the unique
    body parts (the schema's last keypoints), which the animals never label."""
    labels = draw(label_sets(TaskType.KEYPOINTS, names=DLC_NAMES))
    assert labels.schema is not None
    count = len(labels.schema.keypoints)
    split = draw(st.integers(1, count))
    for image in labels.images:
        label = _human_objects(image)
        keypoints = label.keypoints.copy()  # type: ignore[union-attr]
        individuals = []
        for i in range(len(label)):
            if split < count and i == len(label) - 1 and i > 0 and draw(st.booleans()):
                keypoints[i, :split] = 0.0
                individuals.append({"individual": "single"})
            else:
                keypoints[i, split:] = 0.0
                individuals.append({"individual": f"individual{i + 1}"})
        named = ObjectLabels(
            label.boxes, label.class_names, keypoints=keypoints, attributes=tuple(individuals)
        )
        image.annotations = [Annotation(named, image.annotations[0].provenance)]
    return labels


def _labeled_points(labels: LabelSet, image: LabeledImage) -> dict[Any, dict[str, tuple[float, float]]]:
    """Per individual, the labeled points by keypoint name: what DeepLabCut stores (no boxes)."""
    assert labels.schema is not None
    out: dict[Any, dict[str, tuple[float, float]]] = {}
    for annotation in image.annotations:
        label = annotation.label
        if annotation.provenance.kind is not ProvenanceKind.HUMAN or not isinstance(label, ObjectLabels):
            continue
        for i in range(len(label)):
            assert label.keypoints is not None
            points = {
                labels.schema.keypoints[k]: (float(x), float(y))
                for k, (x, y, v) in enumerate(label.keypoints[i])
                if v > 0
            }
            if points:
                individual = label.attributes[i].get("individual") if label.attributes else None
                out[individual] = points
    return out


def _assert_same_keypoints(expected: LabelSet, actual: LabelSet, sizes: bool = False) -> None:
    assert expected.schema is not None and actual.schema is not None
    assert set(actual.schema.keypoints) == set(expected.schema.keypoints)
    assert set(actual.schema.skeleton) == set(expected.schema.skeleton)
    by_name = {image.name: image for image in actual.images}
    assert set(by_name) == {image.name for image in expected.images}
    for image in expected.images:
        got = by_name[image.name]
        if sizes:
            assert (got.width, got.height) == (image.width, image.height)
        want_points, got_points = _labeled_points(expected, image), _labeled_points(actual, got)
        assert want_points.keys() == got_points.keys(), image.name
        for individual, points in want_points.items():
            assert points.keys() == got_points[individual].keys(), (image.name, individual)
            for name, xy in points.items():
                np.testing.assert_allclose(got_points[individual][name], xy, rtol=1e-6, atol=1e-9)
        for annotation in got.annotations:
            label = annotation.label
            assert isinstance(label, ObjectLabels) and set(label.class_names) <= {"animal"}
            if label.keypoints is not None:
                assert set(label.keypoints[:, :, 2].ravel()) <= {0.0, 2.0}


def _images(labels: LabelSet, folder: Path) -> Path:
    for image in labels.images:
        assert image.width is not None and image.height is not None
        path = folder / image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (image.width, image.height)).save(path)
    return folder


def _zip(project: Path, archive: Path) -> Path:
    """Zip the project inside a top-level folder, as people usually share one."""
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(project.rglob("*")):
            if path.is_file():
                handle.write(path, f"reach-mouse-2024-01-01/{path.relative_to(project).as_posix()}")
    return archive


def _round_trip(labels: LabelSet, zipped: bool, with_images: bool = False) -> LabelSet:
    with tempfile.TemporaryDirectory() as tmp:
        source = _images(labels, Path(tmp) / "source") if with_images else None
        project = Path(tmp) / "project"
        written = DLC.save(labels, project, SaveOptions(image_source=source))
        assert all(path.is_file() and path.is_relative_to(project) for path in written)
        path = _zip(project, Path(tmp) / "project.zip") if zipped else project
        result = DLC.load(path, LoadOptions())
        assert result.rejections == [], result.rejections
        assert result.records == result.imported == len(labels.images)
        return result.labels


# -- round trips --------------------------------------------------------------------------------
@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS, names=DLC_NAMES).map(_single_animal), zipped=st.booleans())
def test_single_animal_round_trip(labels: LabelSet, zipped: bool) -> None:
    back = _round_trip(labels, zipped)
    _assert_same_keypoints(labels, back)
    assert back.schema is not None and back.schema.keypoints == labels.schema.keypoints  # type: ignore[union-attr]


@ROUND_TRIP
@given(labels=multi_animal_sets(), zipped=st.booleans())
def test_multi_animal_round_trip(labels: LabelSet, zipped: bool) -> None:
    _assert_same_keypoints(labels, _round_trip(labels, zipped))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=multi_animal_sets(), zipped=st.booleans())
def test_round_trip_with_images_reads_their_sizes(labels: LabelSet, zipped: bool) -> None:
    _assert_same_keypoints(labels, _round_trip(labels, zipped, with_images=True), sizes=True)


def test_saved_project_has_deeplabcut_layout_and_flattens_foreign_names(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["mouse"], keypoints=["nose", "tail"])
    points = np.array([[[1.5, 2.25, 2], [0, 0, 0]]])
    label = ObjectLabels(np.array([[1.5, 2.25, 1.5, 2.25]]), ("mouse",), keypoints=points)
    images = [
        LabeledImage(name, annotations=[Annotation(label, Provenance.human("x"))])
        for name in ("sub/a.png", "sub__a.png", "b.png")
    ]
    written = DLC.save(LabelSet(schema, images), tmp_path, SaveOptions())
    csv_path = tmp_path / "labeled-data/visionloop/CollectedData_visionloop.csv"
    assert written == [tmp_path / "config.yaml", csv_path]
    assert csv_path.read_text().splitlines() == [
        "scorer,,,visionloop,visionloop,visionloop,visionloop",
        "bodyparts,,,nose,nose,tail,tail",
        "coords,,,x,y,x,y",
        "labeled-data,visionloop,b.png,1.5,2.25,,",
        "labeled-data,visionloop,sub__a.png,1.5,2.25,,",
        "labeled-data,visionloop,sub__a-2.png,1.5,2.25,,",
    ]
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["bodyparts"] == ["nose", "tail"] and config["multianimalproject"] is False
    assert [Path(video).stem for video in config["video_sets"]] == ["visionloop"]
    loaded = DLC.load(tmp_path / "config.yaml", LoadOptions(schema=schema))
    assert {i.name for i in loaded.labels.images} == {
        "labeled-data/visionloop/b.png",
        "labeled-data/visionloop/sub__a.png",
        "labeled-data/visionloop/sub__a-2.png",
    }
    assert loaded.labels.images[0].annotations[0].label.class_names == ("mouse",)  # type: ignore[union-attr]


# -- hand-written projects and rejections ---------------------------------------------------
def _project(folder: Path, config: Any, csv_text: str | None, video: str = "v") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    (folder / "config.yaml").write_text(text)
    if csv_text is not None:
        (folder / "labeled-data" / video).mkdir(parents=True, exist_ok=True)
        (folder / "labeled-data" / video / "CollectedData_Alex.csv").write_text(csv_text)
    return folder


SINGLE_CONFIG = {"scorer": "Alex", "bodyparts": ["nose", "tail"], "skeleton": [["nose", "tail"]]}
HEADER = "scorer,,,Alex,Alex,Alex,Alex\nbodyparts,,,nose,nose,tail,tail\ncoords,,,x,y,x,y\n"


def test_reads_single_animal_csv_with_nan_and_image_sizes(tmp_path: Path) -> None:
    project = _project(
        tmp_path / "p",
        SINGLE_CONFIG,
        HEADER + "labeled-data,v,img1.png,1.5,2,NaN,NaN\nlabeled-data,v,img2.png,,,,\n",
    )
    Image.new("RGB", (12, 9)).save(project / "labeled-data/v/img1.png")
    result = DLC.load(project, LoadOptions())
    assert result.rejections == [] and result.records == 2
    first, second = result.labels.images
    assert (first.name, first.width, first.height) == ("labeled-data/v/img1.png", 12, 9)
    [annotation] = first.annotations
    assert annotation.provenance == Provenance.human("deeplabcut:Alex")
    label = annotation.label
    assert isinstance(label, ObjectLabels) and label.keypoints is not None
    np.testing.assert_array_equal(label.keypoints, [[[1.5, 2, 2], [0, 0, 0]]])
    np.testing.assert_array_equal(label.boxes, [[1.5, 2, 1.5, 2]])
    assert (second.width, len(second.annotations[0].label)) == (None, 0)  # type: ignore[arg-type]
    assert result.labels.schema == LabelSchema(
        task=TaskType.KEYPOINTS, classes=["animal"], keypoints=["nose", "tail"], skeleton=[("nose", "tail")]
    )


def test_reads_multi_animal_csv_with_one_index_column_and_unique_bodyparts(tmp_path: Path) -> None:
    config = {
        "scorer": "Alex",
        "multianimalproject": True,
        "bodyparts": "MULTI!",
        "multianimalbodyparts": ["snout", "tail"],
        "uniquebodyparts": ["corner"],
        "individuals": ["m1", "m2"],
        "skeleton": [["snout", "tail"]],
    }
    csv_text = (
        "scorer,Alex,Alex,Alex,Alex,Alex,Alex,Alex,Alex,Alex,Alex\n"
        "individuals,m1,m1,m1,m1,m2,m2,m2,m2,single,single\n"
        "bodyparts,snout,snout,tail,tail,snout,snout,tail,tail,corner,corner\n"
        "coords,x,y,x,y,x,y,x,y,x,y\n"
        "labeled-data\\v\\img7.png,1,2,3,4,,,,,9,9\n"
    )
    result = DLC.load(_project(tmp_path / "p", config, csv_text), LoadOptions())
    assert result.rejections == []
    [image] = result.labels.images
    assert image.name == "labeled-data/v/img7.png"
    label = image.annotations[0].label
    assert isinstance(label, ObjectLabels) and label.attributes == (
        {"individual": "m1"},
        {"individual": "single"},
    )
    assert result.labels.schema is not None and result.labels.schema.keypoints == ["snout", "tail", "corner"]
    np.testing.assert_array_equal(
        label.keypoints, [[[1, 2, 2], [3, 4, 2], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [9, 9, 2]]]
    )


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("labeled-data,v,img3.png,1,2,3", "expected 7 columns like the header, got 6"),
        ("labeled-data,v,img3.png,1,2,3,4,5", "expected 7 columns like the header, got 8"),
        ("labeled-data,v,img3.png,1,abc,3,4", "non-numeric cell 'abc' in column 5"),
        ("labeled-data,v,img3.png,-1,2,3,4", "negative coordinate -1 in column 4"),
        ("labeled-data,v,img3.png,inf,2,3,4", "non-finite coordinate"),
        ("labeled-data,v,img3.png,1,,3,4", "only one of x and y"),
        ("labeled-data,v,img1.png,50,2,,", "keypoint lies outside the 12x9 image"),
        ("labeled-data,..,..,1,2,3,4", "'..' segments are not allowed"),
        ("labeled-data,,img3.png,1,2,3,4", "three index cells"),
        ("labeled-data,v,img0.png,1,2,3,4", "duplicate image 'labeled-data/v/img0.png'"),
    ],
)
def test_bad_rows_are_rejected_with_row_and_reason(tmp_path: Path, row: str, reason: str) -> None:
    project = _project(tmp_path / "p", SINGLE_CONFIG, HEADER + f"labeled-data,v,img0.png,1,2,3,4\n\n{row}\n")
    Image.new("RGB", (12, 9)).save(project / "labeled-data/v/img1.png")
    result = DLC.load(project, LoadOptions())
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert rejection.file == f"{project}/labeled-data/v/CollectedData_Alex.csv"
    assert rejection.locator == "row 6"
    assert reason in rejection.reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("scorer,,,Alex,Alex\nbodyparts,,,ear,ear\ncoords,,,x,y\n", "unknown bodypart 'ear'"),
        ("scorer,,,Alex,Alex\nbodyparts,,,nose,nose\ncoords,,,x,likelihood\n", "x, y pair"),
        ("scorer,,Alex,Alex\nbodyparts,,nose,nose\ncoords,,x,y\n", "1 or 3 index columns"),
        ("scorer,,,Alex,Alex\nbodyparts,,,nose,nose\n", "header rows"),
        ("scorer,,,A,A,A,A\nbodyparts,,,nose,nose,nose,nose\ncoords,,,x,y,x,y\n", "duplicate columns"),
        ("bodyparts,,,nose,nose\ncoords,,,x,y\n", "starting with 'scorer'"),
        ("scorer,,,Alex,Alex\nbodyparts,,,nose,nose,nose\ncoords,,,x,y\n", "different numbers of columns"),
    ],
)
def test_bad_headers_reject_the_file(tmp_path: Path, header: str, reason: str) -> None:
    project = _project(tmp_path / "p", SINGLE_CONFIG, header + "labeled-data,v,a.png,1,2\n")
    result = DLC.load(project, LoadOptions())
    [rejection] = result.rejections
    assert (rejection.locator, result.records, result.imported) == ("header", 1, 0)
    assert reason in rejection.reason


# -- hostile inputs -------------------------------------------------------------------------------
class _Trap:
    """Unpickling this touches a sentinel file: proof that nobody may unpickle project files."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.sentinel,))


def _zip_with(archive: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for info, data in members:
            handle.writestr(info, data)
    return archive


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def malformed_inputs(folder: Path) -> list[Path]:
    """Distinct broken or hostile projects and archives; none may crash, escape or run code."""
    good_csv = HEADER + "labeled-data,v,a.png,1,2,3,4\n"
    good_config = yaml.safe_dump(SINGLE_CONFIG).encode()
    outside = folder / "outside.txt"
    outside.write_text("secret")
    paths = [
        _zip_with(folder / "slip.zip", [("config.yaml", good_config), ("../evil", b"x")]),
        _zip_with(folder / "absolute.zip", [("/tmp/evil_absolute", b"x")]),
        _zip_with(folder / "symlink.zip", [(_symlink_info("config.yaml"), b"/etc/passwd")]),
        _zip_with(folder / "many.zip", [(f"f{i}", b"") for i in range(1_001)]),
        _zip_with(folder / "bomb.zip", [("config.yaml", good_config), ("big.bin", b"\0" * (4 << 20))]),
        _zip_with(folder / "backslash.zip", [("..\\evil", b"x")]),
        _zip_with(folder / "drive.zip", [("C:/evil", b"x")]),
    ]
    (folder / "garbage.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    paths.append(folder / "garbage.zip")
    pickled = _project(folder / "pickled", good_config.decode(), None)
    (pickled / "labeled-data/v").mkdir(parents=True)
    payload = pickle.dumps(_Trap(folder / "PWNED"))
    (pickled / "labeled-data/v/CollectedData_Alex.pickle").write_bytes(payload)
    (pickled / "labeled-data/v/CollectedData_Alex.h5").write_bytes(payload)
    paths.append(pickled)
    paths.append(
        _project(folder / "yaml_tag", f"!!python/object/apply:pathlib.Path.touch ['{folder}/PWNED']\n", None)
    )
    paths.append(
        _project(folder / "ragged", SINGLE_CONFIG, HEADER + "labeled-data,v,a.png,1\nx\n,,,,,,,,,\n")
    )
    paths.append(_project(folder / "config_list", "- a\n- b\n", good_csv))
    paths.append(_project(folder / "no_bodyparts", {"scorer": "Alex"}, good_csv))
    paths.append(
        _project(folder / "bad_skeleton", {**SINGLE_CONFIG, "skeleton": [["nose", "ear"]]}, good_csv)
    )
    paths.append(
        _project(folder / "unsafe_video", SINGLE_CONFIG, HEADER + "labeled-data,/etc,passwd,1,2,3,4\n")
    )
    binary = _project(folder / "binary_csv", SINGLE_CONFIG, None)
    (binary / "labeled-data/v").mkdir(parents=True)
    (binary / "labeled-data/v/CollectedData_Alex.csv").write_bytes(b"\xff\xfe\x00\x01scorer")
    paths.append(binary)
    linked = _project(folder / "linked_csv", SINGLE_CONFIG, None)
    (linked / "labeled-data/v").mkdir(parents=True)
    os.symlink(outside, linked / "labeled-data/v/CollectedData_Alex.csv")
    paths.append(linked)
    linked_config = folder / "linked_config"
    (linked_config / "labeled-data/v").mkdir(parents=True)
    os.symlink(outside, linked_config / "config.yaml")
    paths.append(linked_config)
    bomb_image = _project(folder / "image_bomb", SINGLE_CONFIG, good_csv)
    (bomb_image / "labeled-data/v/a.png").write_bytes(_huge_png_header())
    paths.append(bomb_image)
    (folder / "empty_project").mkdir()
    paths += [folder / "empty_project", outside, folder / "missing_project"]
    return paths


def _huge_png_header() -> bytes:
    """A PNG claiming 100000 x 100000 pixels: its size must be refused, not decoded."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height (CRC now wrong too)
    return bytes(data)


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.lstat().st_size for p in folder.rglob("*") if not p.is_dir()}


@pytest.mark.parametrize("index", range(22))
def test_malformed_inputs_never_crash_escape_or_unpickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    inputs_folder = tmp_path / "inputs"
    inputs_folder.mkdir()
    inputs = malformed_inputs(inputs_folder)
    assert len(inputs) >= 15 and len({p.name for p in inputs}) == len(inputs)
    path = inputs[index]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(deeplabcut, "ARCHIVE_ENTRIES", 1_000)  # the real limit is 100,000 members

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a project file was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    before = _tree(tmp_path)
    try:
        result = DLC.load(path, LoadOptions())
    except VisionloopError as exc:  # only an unusable path argument, and it must be named
        assert str(path) in str(exc)
        return
    assert _tree(tmp_path) == before, "the loader wrote files (or left temporary ones behind)"
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil_absolute").exists()
    assert not (inputs_folder / "PWNED").exists()
    if path.name != "image_bomb":  # an unreadable image only loses its size; the labels stand
        assert result.rejections, path.name
    assert all(r.file.startswith(str(path)) and r.locator and r.reason for r in result.rejections)
    assert result.imported + len(result.rejections) == result.records
