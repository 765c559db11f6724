"""Export a trained model to ONNX, and keep the export only if ONNX Runtime agrees with PyTorch.

The graph takes one ``(N, 3, side, side)`` float batch (dynamic ``N``, the family's own
preprocessing outside) and returns the family's ``onnx_outputs`` plus ``embedding``: the vector
``predict_and_embed`` captures, so pre-labeling on ONNX Runtime stores the same embeddings.

The parity check runs PyTorch and ONNX Runtime on the same preprocessed images and compares
every output; an export that disagrees is deleted and the previous one, if any, is left as it
was. The graph is written to a temporary file and renamed into place before ``onnx.json``, so a
crash in between leaves an export whose recorded sha256 no longer matches and is ignored.
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
from visionloop.datasets.records import ImageReader
from visionloop.models.artifact import read_artifact
from visionloop.models.embeddings import EmbeddingSource, pool_features
from visionloop.models.weights import sha256_file
from visionloop.project import Project
from visionloop.tasks.onnx_files import (
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    ONNX_NAME,
    OnnxExport,
    OnnxParity,
    write_export,
)
from visionloop.tasks.onnx_runtime import exportable_family, import_onnxruntime, open_session
from visionloop.tasks.registry import load_trained_model, require_project_task, resolve_model_folder

__all__ = ["DEFAULT_OPSET", "EXPORT_KIND", "export_onnx", "export_project_model", "parity"]

EXPORT_KIND = "export-model"
DEFAULT_OPSET = 17
MIN_AGREEMENT = 0.995
# Largest absolute difference allowed, as a share of the output's largest absolute value.
TOLERANCE = 1e-3
_PARITY_BATCH = 32


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
) -> OnnxExport:
    """Export the model in ``folder`` to ``folder/model.onnx`` and check it on ``images`` (raw RGB,
    any size). Raises ``ValidationError`` for families that cannot export yet and for an export
    that fails the parity check (which is then not kept)."""
    artifact = read_artifact(folder)
    family = exportable_family(artifact)
    if not images:
        raise ValidationError(f"{folder}: the ONNX parity check needs at least one image")
    ort = import_onnxruntime("ONNX export (its parity check)")
    trained = load_trained_model(folder)
    graph = _WithEmbedding(trained.network, family.embedding_source(trained.network)).eval()
    output_names = [output.name for output in family.onnx_outputs] + [EMBEDDING_OUTPUT]
    side = artifact.model.image_size
    temporary = folder / f".{ONNX_NAME}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        example = torch.from_numpy(family.input_batch(images[:1], artifact.model))
        with torch.inference_mode():
            produced = graph(example)
        if len(produced) != len(output_names):
            raise ValidationError(
                f"{folder}: the {family.name} network returns {len(produced) - 1} outputs, its family "
                f"declares {len(family.onnx_outputs)}"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                graph,
                (example,),
                str(temporary),
                input_names=[INPUT_NAME],
                output_names=output_names,
                dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *output_names]},
                opset_version=opset,
                dynamo=False,
            )
        session = open_session(str(temporary))
        inputs = [
            family.input_batch(images[start : start + _PARITY_BATCH], artifact.model)
            for start in range(0, len(images), _PARITY_BATCH)
        ]
        reference = [_torch_outputs(graph, batch) for batch in inputs]
        exported = [
            [np.asarray(value, np.float32) for value in session.run(output_names, {INPUT_NAME: batch})]
            for batch in inputs
        ]
        result = parity(output_names, reference, exported, min_agreement=min_agreement, tolerance=tolerance)
        if not result.passed:
            raise ValidationError(
                f"{folder}: the ONNX export disagrees with PyTorch and was not kept: "
                + "; ".join(result.reasons)
            )
        export = OnnxExport(
            folder=folder,
            onnx_sha256=sha256_file(temporary),
            weights_sha256=artifact.weights_sha256,
            family=artifact.family,
            image_size=side,
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
        )
        os.replace(temporary, export.path)
        write_export(export)
        return export
    finally:
        graph.close()
        temporary.unlink(missing_ok=True)


def export_project_model(
    project: Project, model: str, *, parity_images: int = 64, opset: int = DEFAULT_OPSET
) -> tuple[str, OnnxExport]:
    """Export ``model`` (training run id, prefix or folder) to ONNX, checking parity on up to
    ``parity_images`` of the project's images spread over the catalog; stored as a run of kind
    ``export-model``. Returns the run id and the export."""
    folder = resolve_model_folder(project, model)
    artifact = read_artifact(folder)
    require_project_task(project, artifact.schema, folder, "be exported for")
    exportable_family(artifact)  # refuse before reading any image
    reader = ImageReader(project.config.s3.fsspec_options())
    with project.open_catalog() as catalog:
        uris = [item.uri for item in catalog.iter_items()]
        step = max(1, len(uris) // max(1, parity_images))
        images = []
        for uri in uris[::step][:parity_images]:
            try:
                images.append(reader.reduced(uri, artifact.model.image_size)[0])
            except (VisionloopError, OSError):
                continue  # an unreadable image cannot take part in the check; the rest still do
        config = {"format": "onnx", "opset": opset, "parity_images": parity_images}
        inputs = {
            "model": str(folder),
            "model_version": artifact.version,
            "model_sha256": artifact.weights_sha256,
        }
        run_id = catalog.start_run(EXPORT_KIND, config, inputs, parent_id=None)
        try:
            export = export_onnx(folder, images, opset=opset)
        except Exception as exc:
            catalog.finish_run(run_id, {}, error=f"{type(exc).__name__}: {exc}")
            raise
        catalog.finish_run(run_id, export.to_dict())
    return run_id, export


def _torch_outputs(graph: _WithEmbedding, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    with torch.inference_mode():
        return [value.float().numpy() for value in graph(torch.from_numpy(batch))]


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
