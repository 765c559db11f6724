"""Benchmark COCO import against pycocotools loading the same file, and export throughput.

Both loaders start from the same JSON file on disk (page cache warm). ``pycocotools.COCO()``
parses the JSON and builds its indexes; visionloop parses, validates every record (types, box
inside image, polygon sizes, categories, duplicates) and builds column-oriented labels. Target:
visionloop import time <= 2x pycocotools. Printed, never asserted.

Usage: .venv/bin/python bench/formats.py [--annotations 100000] [--per-image 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

TARGET = 2.0


def make_coco(path: Path, annotations: int, per_image: int, seed: int = 0) -> None:
    """Instances with boxes and 8-point polygons, as typical detection/segmentation files have."""
    rng = np.random.default_rng(seed)
    images = annotations // per_image
    data: dict[str, Any] = {
        "images": [
            {"id": i + 1, "file_name": f"{i // 1000:03d}/{i:07d}.jpg", "width": 640, "height": 480}
            for i in range(images)
        ],
        "categories": [{"id": c + 1, "name": f"class{c}"} for c in range(20)],
        "annotations": [],
    }
    xy = rng.uniform(0, 400, size=(annotations, 2))
    wh = rng.uniform(10, 70, size=(annotations, 2))
    for a in range(annotations):
        x, y = xy[a]
        w, h = wh[a]
        ring = [x, y + h / 2, x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h]
        data["annotations"].append(
            {
                "id": a + 1,
                "image_id": a // per_image + 1,
                "category_id": int(a % 20) + 1,
                "bbox": [float(x), float(y), float(w), float(h)],
                "area": float(w * h / 2),
                "iscrowd": 0,
                "segmentation": [[float(v) for v in ring]],
            }
        )
    path.write_text(json.dumps(data))


def timed(function: Any, repeats: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--per-image", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    coco = get_format("coco")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "instances.json"
        make_coco(path, args.annotations, args.per_image)
        size_mb = path.stat().st_size / 1e6
        print(
            f"COCO file: {args.annotations} annotations, "
            f"{args.annotations // args.per_image} images, {size_mb:.1f} MB"
        )

        def reference() -> COCO:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                return COCO(str(path))

        # Interleaved (reference, ours, reference, ours, ...) so background load hits both alike.
        ref_all, ours_all = [], []
        for _ in range(args.repeats):
            ref_all.append(timed(reference, 1)[0])
            seconds, _all, result = timed(lambda: coco.load(path, LoadOptions()), 1)
            ours_all.append(seconds)
        ref_median, ours_median = statistics.median(ref_all), statistics.median(ours_all)
        assert result.rejections == [], result.rejections[:3]
        ratio = ours_median / ref_median
        print(f"  pycocotools.COCO()      {ref_median:7.3f} s   all: {[round(t, 3) for t in ref_all]}")
        print(
            f"  visionloop coco import  {ours_median:7.3f} s   all: {[round(t, 3) for t in ours_all]}"
            f"   ({args.annotations / ours_median:,.0f} annotations/s, {result.imported} records imported)"
        )
        print(
            f"  ratio visionloop/pycocotools: {ratio:.2f}  target <= {TARGET}  "
            f"{'PASS' if ratio <= TARGET else 'FAIL'}"
        )

        out = Path(tmp) / "out.json"
        export_median, export_all, _ = timed(
            lambda: coco.save(result.labels, out, SaveOptions()), args.repeats
        )
        print(
            f"  visionloop coco export  {export_median:7.3f} s   all: {[round(t, 3) for t in export_all]}"
            f"   ({args.annotations / export_median:,.0f} annotations/s)"
        )
        print(
            json.dumps(
                {
                    "annotations": args.annotations,
                    "pycocotools_s": ref_median,
                    "import_s": ours_median,
                    "ratio": ratio,
                    "pass": ratio <= TARGET,
                    "export_s": export_median,
                    "export_annotations_per_s": args.annotations / export_median,
                }
            )
        )


if __name__ == "__main__":
    main()
