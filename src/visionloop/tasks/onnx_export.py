"""Export a trained model to ONNX, and keep the export only if ONNX Runtime agrees with PyTorch.

Classifier and heat-map graphs take one ``(N, 3, side, side)`` float batch (dynamic ``N``, the
family's own preprocessing outside); detector graphs take one image at a size of its own (see
:mod:`visionloop.tasks.detection_graph`). Every graph returns the family's ``onnx_outputs`` plus
``embedding``: the vector ``predict_and_embed`` captures, so pre-labeling on ONNX Runtime stores
the same embeddings.

The parity check runs PyTorch and ONNX Runtime on the same images. Classifiers and heat maps are
compared output by output (decisions must agree on 99.5% of images, values within 0.1% of their
scale). Detectors cannot be compared element-wise (a box at the score threshold may be kept by
one runtime and dropped by the other), so each image goes through the real PyTorch prediction
path and through ONNX Runtime plus the numpy decoding, and the ONNX labels are scored against
PyTorch's, taken as the truth, with the task's metrics (box mAP; mask mAP; OKS AP): they must
stay within 0.5 point of PyTorch's own score, and the embeddings within 0.1% of their scale.
PyTorch's labels rather than ground truth are the reference because they exist for every image,
labelled or not, and because two runtimes equally wrong against the truth would pass a
comparison with it while disagreeing object by object.

An export that disagrees is deleted and the previous one, if any, is left as it was. The graph
is written to a temporary file and renamed into place before ``onnx.json``, so a crash in between
leaves an export whose recorded sha256 no longer matches and is ignored.

With ``int8`` an int8 graph is made from the fp32 one (:mod:`visionloop.tasks.onnx_int8`),
measured against it on the parity images and kept only when it is at least 1.5x faster and
loses at most one point: accuracy against the truth when at least 20 of the images are labelled
by people, agreement with PyTorch's predictions otherwise.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from visionloop.core.errors import ValidationError, VisionloopError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.provenance import ProvenanceKind
from visionloop.datasets.records import ImageReader
from visionloop.models.artifact import ModelArtifact, read_artifact
from visionloop.models.embeddings import EmbeddingSource, pool_features
from visionloop.models.weights import sha256_file
from visionloop.project import Project
from visionloop.tasks.agreement import points_lost
from visionloop.tasks.onnx_files import (
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    INT8_NAME,
    ONNX_NAME,
    OnnxExport,
    OnnxParity,
    write_export,
)
from visionloop.tasks.onnx_int8 import MAX_INT8_LOSS, MIN_INT8_SPEEDUP, Int8Evidence, try_int8
from visionloop.tasks.onnx_runtime import (
    exportable_family,
    images_per_run,
    import_onnxruntime,
    open_session,
    session_predictions,
)
from visionloop.tasks.registry import (
    TrainedModel,
    load_trained_model,
    require_project_task,
    resolve_model_folder,
)
from visionloop.tasks.rescale import rescale_label
from visionloop.tasks.spec import ExportableFamily, GraphExportableFamily

__all__ = [
    "DEFAULT_OPSET",
    "EXPORT_KIND",
    "MAX_POINTS_LOST",
    "export_onnx",
    "export_project_model",
    "parity",
]

EXPORT_KIND = "export-model"
DEFAULT_OPSET = 17
MIN_AGREEMENT = 0.995
# Largest absolute difference allowed, as a share of the output's largest absolute value.
TOLERANCE = 1e-3
MAX_POINTS_LOST = 0.5  # detectors: task-metric points ONNX Runtime may lose against PyTorch
_PARITY_BATCH = 32
_BOX_PIXELS = 1.0  # boxes this close count as the same object in the information-only agreement


class _WithEmbedding(nn.Module):
    """The network, returning its outputs and the pooled embedding its hook point sees."""

    def __init__(self, network: nn.Module, source: EmbeddingSource) -> None:
        super().__init__()
        self.network = network
        self._captured: list[torch.Tensor] = []
        module, which = source
        if which == "input":
            self._handle = module.register_forward_pre_hook(lambda _m, args: self._keep(args[0]))
        else:
            self._handle = module.register_forward_hook(lambda _m, _args, output: self._keep(output))

    def _keep(self, value: Any) -> None:
        self._captured.append(pool_features(value))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self._captured.clear()
        outputs = self.network(images)
        if len(self._captured) != 1:
            raise RuntimeError(f"the embedding hook fired {len(self._captured)} times in one forward pass")
        found = tuple(outputs) if isinstance(outputs, tuple | list) else (outputs,)
        return (*found, self._captured[0])

    def close(self) -> None:
        self._handle.remove()


def export_onnx(
    folder: Path,
    images: Sequence[npt.NDArray[np.uint8]],
    *,
    opset: int = DEFAULT_OPSET,
    min_agreement: float = MIN_AGREEMENT,
    tolerance: float = TOLERANCE,
    max_points_lost: float = MAX_POINTS_LOST,
    int8: bool = False,
    calibration: Sequence[npt.NDArray[np.uint8]] = (),
    truths: Sequence[Label | None] | None = None,
    min_int8_speedup: float = MIN_INT8_SPEEDUP,
    max_int8_loss: float = MAX_INT8_LOSS,
) -> OnnxExport:
    """Export the model in ``folder`` to ``folder/model.onnx`` and check it on ``images`` (raw RGB,
    any size). Raises ``ValidationError`` for families that cannot export and for an export that
    fails the parity check (which is then not kept).

    ``int8``: also try an int8 graph, calibrated on ``calibration`` (default: ``images``) and
    judged on ``images``; ``truths`` (one per image, ``None`` where unlabelled, in the images'
    pixels) lets the accuracy loss be measured against people's labels."""
    artifact = read_artifact(folder)
    family = exportable_family(artifact)
    if not images:
        raise ValidationError(f"{folder}: the ONNX parity check needs at least one image")
    if truths is not None and len(truths) != len(images):
        raise ValidationError(f"{folder}: {len(truths)} truths for {len(images)} parity images")
    ort = import_onnxruntime("ONNX export (its parity check)")
    trained = load_trained_model(folder)
    network = (
        family.onnx_graph(trained.network) if isinstance(family, GraphExportableFamily) else trained.network
    )
    graph = _WithEmbedding(network, family.embedding_source(trained.network)).eval()
    output_names = [output.name for output in family.onnx_outputs] + [EMBEDDING_OUTPUT]
    token = uuid.uuid4().hex[:8]
    temporary = folder / f".{ONNX_NAME}.{token}.tmp"
    int8_temporary = folder / f".{INT8_NAME}.{token}.tmp"
    try:
        _write_graph(graph, family, artifact, images[0], output_names, opset, temporary)
        session = open_session(str(temporary))
        if isinstance(family, GraphExportableFamily):
            graph.close()  # PyTorch's own prediction path is the reference from here on
            result, reference, ours = _object_parity(
                trained, family, session, images, tolerance, max_points_lost
            )
        else:
            result, reference, ours = _output_parity(
                graph, family, artifact, session, images, output_names, min_agreement, tolerance
            )
        if not result.passed:
            raise ValidationError(
                f"{folder}: the ONNX export disagrees with PyTorch and was not kept: "
                + "; ".join(result.reasons)
            )
        trial = None
        if int8:
            evidence = Int8Evidence(
                fp32=temporary,
                session=session,
                family=family,
                artifact=artifact,
                images=images,
                calibration=calibration,
                reference=reference,
                fp32_labels=ours,
                truths=truths,
            )
            trial = try_int8(evidence, int8_temporary, min_speedup=min_int8_speedup, max_loss=max_int8_loss)
        export = OnnxExport(
            folder=folder,
            onnx_sha256=sha256_file(temporary),
            weights_sha256=artifact.weights_sha256,
            family=artifact.family,
            image_size=artifact.model.image_size,
            opset=opset,
            input_name=INPUT_NAME,
            outputs=output_names,
            embedding_output=EMBEDDING_OUTPUT,
            parity=result,
            exported_with={
                "torch": torch.__version__,
                "onnxruntime": str(ort.__version__),
                "onnx": _installed("onnx"),
            },
            images_per_run=images_per_run(family),
            int8=trial,
        )
        os.replace(temporary, export.path)
        if export.int8_kept:
            os.replace(int8_temporary, export.runtime_path)
        else:
            (folder / INT8_NAME).unlink(missing_ok=True)  # an earlier export's, no longer described
        write_export(export)
        return export
    finally:
        graph.close()
        temporary.unlink(missing_ok=True)
        int8_temporary.unlink(missing_ok=True)


def _write_graph(
    graph: _WithEmbedding,
    family: ExportableFamily,
    artifact: ModelArtifact,
    image: npt.NDArray[np.uint8],
    output_names: list[str],
    opset: int,
    path: Path,
) -> None:
    example = torch.from_numpy(family.input_batch([image], artifact.model))
    with torch.inference_mode():
        produced = graph(example)
    if len(produced) != len(output_names):
        raise ValidationError(
            f"{artifact.folder}: the {family.name} network returns {len(produced) - 1} outputs, its "
            f"family declares {len(output_names) - 1}"
        )
    if isinstance(family, GraphExportableFamily):
        axes = family.onnx_dynamic_axes()
    else:
        axes = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )


def _output_parity(
    graph: _WithEmbedding,
    family: ExportableFamily,
    artifact: ModelArtifact,
    session: Any,
    images: Sequence[npt.NDArray[np.uint8]],
    output_names: list[str],
    min_agreement: float,
    tolerance: float,
) -> tuple[OnnxParity, list[Label], list[Label]]:
    """Output-by-output parity, plus both runtimes' labels decoded from those outputs."""
    chunks = [images[start : start + _PARITY_BATCH] for start in range(0, len(images), _PARITY_BATCH)]
    inputs = [family.input_batch(chunk, artifact.model) for chunk in chunks]
    reference = [_torch_outputs(graph, batch) for batch in inputs]
    exported = [
        [np.asarray(value, np.float32) for value in session.run(output_names, {INPUT_NAME: batch})]
        for batch in inputs
    ]
    result = parity(output_names, reference, exported, min_agreement=min_agreement, tolerance=tolerance)
    theirs: list[Label] = []
    ours: list[Label] = []
    for chunk, want, got in zip(chunks, reference, exported, strict=True):
        sizes = _sizes(chunk)
        theirs.extend(family.labels_from_outputs(want[:-1], sizes, artifact.schema, artifact.model))
        ours.extend(family.labels_from_outputs(got[:-1], sizes, artifact.schema, artifact.model))
    return result, theirs, ours


def _object_parity(
    trained: TrainedModel,
    family: GraphExportableFamily,
    session: Any,
    images: Sequence[npt.NDArray[np.uint8]],
    tolerance: float,
    max_points_lost: float,
) -> tuple[OnnxParity, list[Label], list[Label]]:
    """Detector parity: ONNX Runtime's labels scored against PyTorch's with the task's metrics,
    and the embeddings compared value by value."""
    artifact = trained.artifact
    reference: list[Label] = []
    rows = []
    for image in images:  # one at a time, as the graph runs (a batch pads every image to the largest)
        labels, embedding = trained.predict_and_embed([image])
        reference.extend(labels)
        rows.append(embedding)
    theirs_rows = np.concatenate(rows)
    names = [output.name for output in family.onnx_outputs]
    ours, our_rows = session_predictions(
        session, family, artifact, INPUT_NAME, names, EMBEDDING_OUTPUT, images
    )
    lost, scored = points_lost(reference, ours, artifact.schema, _sizes(images))
    reasons = [
        f"{key} {value:.2f} points below PyTorch's (allowed {max_points_lost:g})"
        for key, value in lost.items()
        if not value <= max_points_lost
    ]
    if our_rows.shape != theirs_rows.shape:
        raise ValidationError(
            f"ONNX output {EMBEDDING_OUTPUT!r} has shape {our_rows.shape}, PyTorch gives {theirs_rows.shape}"
        )
    diff = float(np.abs(our_rows - theirs_rows).max(initial=0.0))
    diff = diff if np.isfinite(diff) else float("inf")
    scale = float(np.abs(theirs_rows).max(initial=0.0))
    allowed = tolerance * max(1.0, scale)
    if diff > allowed:
        reasons.append(f"{EMBEDDING_OUTPUT} differs by up to {diff:.3g} (allowed {allowed:.3g})")
    same = [_same_objects(mine, theirs) for mine, theirs in zip(ours, reference, strict=True)]
    result = OnnxParity(
        images=len(images),
        agreement=sum(same) / len(same),
        max_abs_diff={EMBEDDING_OUTPUT: diff},
        max_abs_reference={EMBEDDING_OUTPUT: scale},
        min_agreement=0.0,  # information only: detectors are judged by the metrics
        tolerance=tolerance,
        passed=not reasons,
        reasons=reasons,
        metrics=scored,
        points_lost=lost,
        max_points_lost=max_points_lost,
    )
    return result, reference, ours


def _same_objects(mine: Label, theirs: Label) -> bool:
    """The same objects in the same order, of the same classes, with boxes within a pixel."""
    if not isinstance(mine, ObjectLabels) or not isinstance(theirs, ObjectLabels):
        return False
    if mine.class_names != theirs.class_names:
        return False
    return bool(np.all(np.abs(mine.boxes - theirs.boxes) <= _BOX_PIXELS))


def export_project_model(
    project: Project,
    model: str,
    *,
    parity_images: int = 64,
    opset: int = DEFAULT_OPSET,
    int8: bool = False,
    calibration_images: int = 32,
) -> tuple[str, OnnxExport]:
    """Export ``model`` (training run id, prefix or folder) to ONNX, checking parity on up to
    ``parity_images`` of the project's images spread over the catalog (their people's labels,
    where they have them, judge an int8 graph); with ``int8``, calibrate it on up to
    ``calibration_images`` other items. Stored as a run of kind ``export-model``. Returns the run
    id and the export."""
    folder = resolve_model_folder(project, model)
    artifact = read_artifact(folder)
    require_project_task(project, artifact.schema, folder, "be exported for")
    exportable_family(artifact)  # refuse before reading any image
    reader = ImageReader(project.config.s3.fsspec_options())
    side = artifact.model.image_size
    with project.open_catalog() as catalog:
        items = list(catalog.iter_items())
        chosen = _spread(items, parity_images)
        annotations = catalog.current_annotations([item.id for item in chosen])
        images: list[npt.NDArray[np.uint8]] = []
        truths: list[Label | None] = []
        for item in chosen:
            try:
                image, full = reader.reduced(item.uri, side)
            except (VisionloopError, OSError):
                continue  # an unreadable image cannot take part in the check; the rest still do
            images.append(image)
            record = annotations.get(item.id)
            human = record is not None and record.provenance.kind is ProvenanceKind.HUMAN
            truths.append(_to_image(record.label, full, image) if human and record else None)
        calibration: list[npt.NDArray[np.uint8]] = []
        if int8:
            taken = {item.id for item in chosen}
            for item in _spread([item for item in items if item.id not in taken], calibration_images):
                try:
                    calibration.append(reader.reduced(item.uri, side)[0])
                except (VisionloopError, OSError):
                    continue
        config = {"format": "onnx", "opset": opset, "parity_images": parity_images, "int8": int8}
        if int8:
            config["calibration_images"] = calibration_images
        inputs = {
            "model": str(folder),
            "model_version": artifact.version,
            "model_sha256": artifact.weights_sha256,
        }
        run_id = catalog.start_run(EXPORT_KIND, config, inputs, parent_id=None)
        try:
            export = export_onnx(
                folder, images, opset=opset, int8=int8, calibration=calibration, truths=truths
            )
        except Exception as exc:
            catalog.finish_run(run_id, {}, error=f"{type(exc).__name__}: {exc}")
            raise
        catalog.finish_run(run_id, export.to_dict())
    return run_id, export


def _spread(items: Sequence[Any], count: int) -> list[Any]:
    """Up to ``count`` of ``items``, evenly spaced."""
    step = max(1, len(items) // max(1, count))
    return list(items[::step][:count])


def _to_image(label: Label, full: tuple[int, int], image: npt.NDArray[np.uint8]) -> Label:
    """A label drawn on the full image, moved to the (possibly reduced) decode's pixels."""
    if isinstance(label, ClassLabel):
        return label
    return rescale_label(label, full, (int(image.shape[0]), int(image.shape[1])))


def _torch_outputs(graph: _WithEmbedding, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    with torch.inference_mode():
        return [value.float().numpy() for value in graph(torch.from_numpy(batch))]


def _sizes(images: Sequence[npt.NDArray[np.uint8]]) -> list[tuple[int, int]]:
    return [(int(image.shape[0]), int(image.shape[1])) for image in images]


def _installed(package: str) -> str:
    try:
        return package_version(package)
    except PackageNotFoundError:
        return "not installed"


def parity(
    names: Sequence[str],
    reference: Sequence[Sequence[npt.NDArray[np.float32]]],
    exported: Sequence[Sequence[npt.NDArray[np.float32]]],
    *,
    min_agreement: float = MIN_AGREEMENT,
    tolerance: float = TOLERANCE,
) -> OnnxParity:
    """Compare per-batch outputs (``names`` order; the first decides). Decisions agree when the
    argmax over the last axis matches for every row: the top class of ``(N, classes)`` logits,
    or each part's peak position of ``(N, parts, h, w)`` score maps."""
    diffs = dict.fromkeys(names, 0.0)
    scales = dict.fromkeys(names, 0.0)
    agreeing = total = 0
    for ours, theirs in zip(reference, exported, strict=True):
        for name, want, got in zip(names, ours, theirs, strict=True):
            if want.shape != got.shape:
                raise ValidationError(
                    f"ONNX output {name!r} has shape {got.shape}, PyTorch gives {want.shape}"
                )
            diff = float(np.abs(want - got).max(initial=0.0))
            diffs[name] = max(diffs[name], diff if np.isfinite(diff) else float("inf"))
            scales[name] = max(scales[name], float(np.abs(want).max(initial=0.0)))
        agreeing += int(_decisions_agree(ours[0], theirs[0]).sum())
        total += len(ours[0])
    agreement = agreeing / total if total else 0.0
    reasons = []
    if agreement < min_agreement:
        reasons.append(f"decisions agree on {agreement:.2%} of {total} images (need {min_agreement:.2%})")
    for name in names:
        allowed = tolerance * max(1.0, scales[name])
        if diffs[name] > allowed:
            reasons.append(f"{name} differs by up to {diffs[name]:.3g} (allowed {allowed:.3g})")
    return OnnxParity(
        images=total,
        agreement=agreement,
        max_abs_diff=diffs,
        max_abs_reference=scales,
        min_agreement=min_agreement,
        tolerance=tolerance,
        passed=not reasons,
        reasons=reasons,
    )


def _decisions_agree(want: npt.NDArray[np.float32], got: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Per row: same argmax everywhere, and nothing that is not a number in the exported row."""
    rows = len(want)
    shape = (rows, 1, -1) if want.ndim <= 2 else (rows, want.shape[1], -1)
    same: npt.NDArray[np.bool_] = np.all(
        want.reshape(shape).argmax(axis=-1) == got.reshape(shape).argmax(axis=-1), axis=1
    )
    finite: npt.NDArray[np.bool_] = np.all(np.isfinite(got.reshape(rows, -1)), axis=1)
    return same & finite
