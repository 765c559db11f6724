"""What the edge runtime reads from a folder (image files by extension, hidden ones left out, in
a stable order) and what it captures of each (JPEG and PNG files as they were, other formats and
video frames encoded)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from visionloop.edge.sources import Frame, list_images, read_frames


def _save(path: Path, kind: str, size: tuple[int, int] = (40, 30)) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(str(path))).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=kind)
    return path.read_bytes()


def test_a_folder_lists_its_images_in_order(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "sub/c.webp", ".hidden.png", ".cache/d.png"):
        _save(tmp_path / name, "PNG")
    (tmp_path / "readme.md").write_text("x")
    listing = list_images(tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in listing.files] == [
        "a.png",
        "b.JPG",
        "sub/c.webp",
    ]
    assert listing.skipped == 1 and all(path.is_absolute() for path in listing.files)


def test_captures_keep_jpeg_and_png_and_encode_the_rest(tmp_path: Path) -> None:
    originals = {
        "photo.jpg": _save(tmp_path / "photo.jpg", "JPEG", (300, 200)),
        "shot.png": _save(tmp_path / "shot.png", "PNG"),
        "scan.webp": _save(tmp_path / "scan.webp", "WEBP"),
    }
    frames = {
        Path(f.source).name: f for f in read_frames(tmp_path, at_least=32, squash_to=(32, 32), workers=2)
    }
    assert frames["photo.jpg"].size == (200, 300) and frames["photo.jpg"].pixels.shape == (32, 32, 3)  # type: ignore[union-attr]
    assert frames["photo.jpg"].capture_image() == (originals["photo.jpg"], "jpg")
    assert frames["shot.png"].capture_image() == (originals["shot.png"], "png")
    data, extension = frames["scan.webp"].capture_image()
    assert extension == "png" and Image.open(io.BytesIO(data)).format == "PNG"
    assert Image.open(io.BytesIO(data)).size == (40, 30)  # the full image, not the model's input


def test_a_video_frame_is_captured_as_jpeg() -> None:
    pixels = np.full((24, 32, 3), 128, np.uint8)
    data, extension = Frame("clip.mp4", 5, pixels, (24, 32)).capture_image()
    assert extension == "jpg" and Image.open(io.BytesIO(data)).size == (32, 24)
