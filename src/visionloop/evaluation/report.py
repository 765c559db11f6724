"""An evaluation report on disk: ``metrics.json`` for machines and ``report.html`` for people.

The HTML page is self-contained (inline CSS, no scripts, no external resources); every piece of
text from the metrics (class names, corruption names, captions, the title) is HTML-escaped, and
plots are referenced by file name relative to the report folder (plots from elsewhere are copied
into it). Both files are written atomically.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from visionloop.core.errors import ValidationError
from visionloop.evaluation._files import jsonable
from visionloop.evaluation.gate import GateResult
from visionloop.evaluation.page import PAGE_CSS, escape, format_value, html_table
from visionloop.storage.filesystem import atomic_write_local

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"

# Entries shown in their own tables (or not at all) rather than in the headline table.
_TABLE_KEYS = frozenset(
    {
        "classes",
        "per_class",
        "per_class_ap",
        "per_keypoint_error",
        "pr_curves",
        "confusion_matrix",
        "reliability",
        "robustness",
        "corruptions",
    }
)
_PER_CLASS_AP_SECTIONS = (((), "AP"), (("mask",), "mask AP"), (("keypoints",), "OKS AP"))
_MAX_MATRIX_CLASSES = 30


def write_report(
    folder: Path,
    metrics: Mapping[str, Any],
    gate: GateResult | None,
    images: Mapping[str, Path],
    title: str,
) -> tuple[Path, Path]:
    """Write ``metrics.json`` (sorted keys, indented, numpy values converted, the gate verdict under
    ``"gate"`` when given) and ``report.html`` into ``folder``; returns both paths.

    ``images`` maps a caption to a PNG (e.g. from :mod:`visionloop.evaluation.plots`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain = jsonable(metrics)
    data = dict(plain)
    if gate is not None:
        if "gate" in data:
            raise ValidationError("the metrics already hold a 'gate' entry; pass the gate separately")
        data["gate"] = jsonable(asdict(gate))
    text = json.dumps(data, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False)
    json_path = folder / METRICS_FILE
    atomic_write_local(str(json_path), (text + "\n").encode("utf-8"))
    references = {caption: _reference(folder, Path(path)) for caption, path in images.items()}
    page = render_html(plain, gate, references, title)
    html_path = folder / REPORT_FILE
    atomic_write_local(str(html_path), page.encode("utf-8"))
    return json_path, html_path


def render_html(
    metrics: Mapping[str, Any], gate: GateResult | None, images: Mapping[str, str], title: str
) -> str:
    """The report page; ``images`` maps captions to relative URLs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    parts.append(_gate_section(gate))
    parts.append(_headline_section(metrics))
    parts.append(_per_class_section(metrics))
    parts.append(_keypoint_section(metrics))
    parts.append(_confusion_section(metrics))
    parts.append(_robustness_section(metrics))
    if images:
        parts.append("<h2>Plots</h2><div>")
        for caption, url in images.items():
            parts.append(
                f'<figure><img src="{escape(url)}" alt="{escape(caption)}">'
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(part for part in parts if part)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _nested(metrics: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = metrics
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _gate_section(gate: GateResult | None) -> str:
    if gate is None:
        return ""
    verdict = "PASSED" if gate.passed else "FAILED"
    css = "pass" if gate.passed else "fail"
    items = []
    if gate.checks:
        for check in gate.checks:
            mark = "pass" if check.passed else "fail"
            items.append(f'<li class="{mark}">{"✔" if check.passed else "✘"} {escape(check.reason)}</li>')
    else:
        items = [f'<li class="{css}">{escape(reason)}</li>' for reason in gate.reasons]
    listing = (
        f'<ul class="checks">{"".join(items)}</ul>' if items else '<p class="muted">no thresholds set</p>'
    )
    return f'<h2>Quality gate</h2><div class="verdict {css}">{verdict}</div>{listing}'


def _headline_rows(metrics: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[list[str]]:
    rows: list[list[str]] = []
    for key, value in metrics.items():
        if key in _TABLE_KEYS:
            continue
        name = f"{prefix}{key}"
        if _is_scalar(value):
            rows.append([escape(name), format_value(value)])
        elif isinstance(value, Mapping) and depth < 2:
            rows.extend(_headline_rows(value, f"{name}.", depth + 1))
    return rows


def _headline_section(metrics: Mapping[str, Any]) -> str:
    rows = _headline_rows(metrics)
    if not rows:
        return ""
    return "<h2>Metrics</h2>" + html_table(["metric", "value"], rows)


def _per_class_section(metrics: Mapping[str, Any]) -> str:
    columns: list[str] = []
    table: dict[str, dict[str, Any]] = {}
    per_class = metrics.get("per_class")
    if isinstance(per_class, Mapping):
        for name, entry in per_class.items():
            if isinstance(entry, Mapping):
                for column, value in entry.items():
                    if column not in columns:
                        columns.append(column)
                    table.setdefault(name, {})[column] = value
    for path, column in _PER_CLASS_AP_SECTIONS:
        values = _nested(metrics, [*path, "per_class_ap"])
        if isinstance(values, Mapping) and values:
            columns.append(column)
            for name, value in values.items():
                table.setdefault(name, {})[column] = value
    if not table:
        return ""
    order = [name for name in metrics.get("classes") or [] if name in table]
    order += [name for name in table if name not in order]
    rows = [[escape(name), *(format_value(table[name].get(column)) for column in columns)] for name in order]
    return "<h2>Per class</h2>" + html_table(["class", *columns], rows)


def _keypoint_section(metrics: Mapping[str, Any]) -> str:
    errors = _nested(metrics, ["pixel_error", "per_keypoint_error"])
    if not isinstance(errors, Mapping) or not errors:
        return ""
    rows = [[escape(name), format_value(value)] for name, value in errors.items()]
    return "<h2>Pixel error per keypoint</h2>" + html_table(["keypoint", "mean error (px)"], rows)


def _confusion_section(metrics: Mapping[str, Any]) -> str:
    matrix = metrics.get("confusion_matrix")
    classes = metrics.get("classes")
    if not isinstance(matrix, list) or not isinstance(classes, list) or len(classes) > _MAX_MATRIX_CLASSES:
        return ""
    if len(matrix) != len(classes):
        return ""
    rows = [
        [escape(name), *(format_value(v) for v in row)] for name, row in zip(classes, matrix, strict=True)
    ]
    return (
        '<h2>Confusion matrix</h2><p class="muted">rows: true class, columns: predicted class</p>'
        + html_table(["true \\ predicted", *[str(c) for c in classes]], rows)
    )


def _robustness_section(metrics: Mapping[str, Any]) -> str:
    summary = metrics.get("robustness")
    if not isinstance(summary, Mapping) or not isinstance(summary.get("corruptions"), Mapping):
        return ""
    corruptions: Mapping[str, Any] = summary["corruptions"]
    severities = sorted({s for entry in corruptions.values() for s in entry.get("values", {})}, key=int)
    rows = []
    for name, entry in corruptions.items():
        cells = []
        for severity in severities:
            value = entry.get("values", {}).get(severity)
            drop = (entry.get("drops") or {}).get(severity)
            cell = format_value(value)
            if isinstance(drop, int | float) and not isinstance(drop, bool):
                cell += f' <span class="muted">(drop {drop:.1%})</span>'
            cells.append(cell)
        rows.append([escape(name), *cells, _pct(entry.get("mean_drop"))])
    intro = (
        f"<p>clean value {format_value(summary.get('clean'))}; largest relative drop "
        f"{_pct(summary.get('max_drop'))} ({format_value(summary.get('worst'))}); mean drop "
        f"{_pct(summary.get('mean_drop'))}</p>"
    )
    header = ["corruption", *[f"severity {s}" for s in severities], "mean drop"]
    return "<h2>Robustness</h2>" + intro + html_table(header, rows)


def _pct(value: Any) -> str:
    return (
        f"{value:.1%}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else format_value(value)
    )


def _reference(folder: Path, path: Path) -> str:
    """A URL relative to ``folder`` for ``path``, copying the file into ``folder`` when outside it."""
    if not path.is_file():
        raise ValidationError(f"report image {path} does not exist")
    root = folder.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        target = root / resolved.name
        counter = 1
        while target.exists() and target.read_bytes() != resolved.read_bytes():
            target = root / f"{resolved.stem}-{counter}{resolved.suffix}"
            counter += 1
        shutil.copyfile(resolved, target)
        resolved = target
    return quote(resolved.relative_to(root).as_posix())
