"""What the edge runtime knows about each exported model family: how images become the
graph's input and how its outputs become core labels.

One entry per family name, looked up by the ``family`` that ``model.json`` records, so a new
family is one more entry. The arithmetic itself is shared with the PyTorch and ONNX Runtime
paths (:mod:`visionloop.imaging.model_input`, :mod:`visionloop.tasks.outputs`, and for the R-CNN
detectors :mod:`visionloop.tasks.detection_inputs` and :mod:`visionloop.tasks.detection_outputs`),
so every runtime returns the same labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visionloop.active.uncertainty import item_confidence
from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label, ObjectLabels
from visionloop.core.schema import LabelSchema
from visionloop.imaging.model_input import normalised_batch
from visionloop.tasks.detection_inputs import detector_input
from visionloop.tasks.detection_outputs import detection_labels
from visionloop.tasks.outputs import class_labels, pose_labels

__all__ = ["DECODERS", "Decoder", "decoder_for", "object_score"]

Images = Sequence[npt.NDArray[np.uint8]]
Outputs = Mapping[str, npt.NDArray[np.float32]]
LabelsFunction = Callable[[Outputs, Sequence[tuple[int, int]], LabelSchema, int], Sequence[Label]]
InputsFunction = Callable[[Images, int], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Decoder:
    """``labels(outputs, sizes, schema, side)``: labels from the graph's label outputs by name
    for images of ``sizes`` ``(height, width)`` fed at ``side`` px. ``inputs(images, side)``: the
    graph input for raw RGB images of any size (as many as one run takes: the export's
    ``images_per_run``). ``score(label)``: how sure the model is of the item, in [0, 1]
    (captures take what scores low). ``squashes``: every image is squashed to ``side x side``, so
    decoding may resize early; detectors keep the aspect ratio and are never squashed."""

    family: str
    labels: LabelsFunction
    score: Callable[[Label], float] = item_confidence
    squashes: bool = True
    inputs: InputsFunction = normalised_batch


def _classifier(
    outputs: Outputs, sizes: Sequence[tuple[int, int]], schema: LabelSchema, side: int
) -> list[Label]:
    return list(class_labels(outputs["logits"], schema.classes))


def _heatmap(
    outputs: Outputs, sizes: Sequence[tuple[int, int]], schema: LabelSchema, side: int
) -> list[Label]:
    return list(pose_labels(outputs["scoremaps"], outputs["locref"], sizes, schema.classes[0], side))


def _animal_score(label: Label) -> float:
    """The heatmap family always places one animal, so a low mean keypoint likelihood means an
    unsure pose (``item_confidence`` would read it as a sure absence)."""
    if not isinstance(label, ObjectLabels) or label.scores is None or len(label) == 0:
        return 0.0
    return float(label.scores.min())


def _one_image(images: Images, side: int) -> npt.NDArray[np.float32]:
    """An R-CNN graph's input: one image resized by the detector's own rule (aspect kept)."""
    if len(images) != 1:
        raise ValidationError(f"a detector graph runs one image at a time, got {len(images)}")
    return detector_input(images[0], side)


def _detector(
    outputs: Outputs, sizes: Sequence[tuple[int, int]], schema: LabelSchema, side: int
) -> list[Label]:
    if len(sizes) != 1:
        raise ValidationError(f"a detector graph's outputs describe one image, got {len(sizes)} sizes")
    return [detection_labels(outputs, sizes[0], side, schema.classes)]


def object_score(label: Label) -> float:
    """A detector's item score: how decisive its least decisive object is, ``min |2c - 1|`` over
    the objects' confidences ``c`` (detection score, times mean keypoint likelihood for keypoint
    models), i.e. ``2 * item_confidence - 1``: pre-labeling's confidence and active learning's
    least-decisive-object rule, moved to the [0, 1] scale of the other families' scores
    (``item_confidence`` never drops below 0.5, so ``--capture-below 0.5`` would capture nothing).
    An image without objects scores 1.0, as in pre-labeling (active learning ranks it first
    instead): on a fixed camera most frames are empty and capturing them all would flood the
    spool; ``--sample`` still sends a share of them for a human to check for missed objects."""
    return max(0.0, 2.0 * item_confidence(label) - 1.0)


def _detector_decoder(family: str) -> Decoder:
    return Decoder(family, _detector, object_score, squashes=False, inputs=_one_image)


DECODERS: Mapping[str, Decoder] = {
    "classifier": Decoder("classifier", _classifier),  # score: the top class's probability
    "heatmap": Decoder("heatmap", _heatmap, _animal_score),
    "faster_rcnn": _detector_decoder("faster_rcnn"),
    "mask_rcnn": _detector_decoder("mask_rcnn"),
    "keypoint_rcnn": _detector_decoder("keypoint_rcnn"),
}


def decoder_for(family: str, where: str) -> Decoder:
    """The decoder of ``family``, refused with the families the edge runtime supports."""
    decoder = DECODERS.get(family)
    if decoder is None:
        raise ValidationError(
            f"{where}: the edge runtime cannot run {family} models yet "
            f"(supported: {', '.join(sorted(DECODERS))})"
        )
    return decoder
