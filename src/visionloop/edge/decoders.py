"""What the edge runtime knows about each exported model family: how images become the
graph's input and how its outputs become core labels.

One entry per family name, looked up by the ``family`` that ``model.json`` records, so a new
family (the detectors, once they export) is one more entry. The arithmetic itself is shared
with the PyTorch and ONNX Runtime paths (:mod:`visionloop.imaging.model_input`,
:mod:`visionloop.tasks.outputs`), so every runtime returns the same labels.
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
from visionloop.tasks.outputs import class_labels, pose_labels

__all__ = ["DECODERS", "Decoder", "decoder_for"]

Outputs = Sequence[npt.NDArray[np.float32]]
LabelsFunction = Callable[[Outputs, Sequence[tuple[int, int]], LabelSchema, int], Sequence[Label]]


@dataclass(frozen=True)
class Decoder:
    """``labels(outputs, sizes, schema, side)``: labels from the graph's label outputs (in the
    export's order) for images of ``sizes`` ``(height, width)`` fed at ``side`` px.
    ``score(label)``: how sure the model is of the item, in [0, 1] (captures take what scores
    low). ``squashes``: every image is squashed to ``side x side``, so decoding may resize early."""

    family: str
    labels: LabelsFunction
    score: Callable[[Label], float] = item_confidence
    squashes: bool = True

    def inputs(self, images: Sequence[npt.NDArray[np.uint8]], side: int) -> npt.NDArray[np.float32]:
        """The graph input for raw RGB images of any size."""
        return normalised_batch(images, side)


def _classifier(
    outputs: Outputs, sizes: Sequence[tuple[int, int]], schema: LabelSchema, side: int
) -> list[Label]:
    return list(class_labels(outputs[0], schema.classes))


def _heatmap(
    outputs: Outputs, sizes: Sequence[tuple[int, int]], schema: LabelSchema, side: int
) -> list[Label]:
    return list(pose_labels(outputs[0], outputs[1], sizes, schema.classes[0], side))


def _animal_score(label: Label) -> float:
    """The heatmap family always places one animal, so a low mean keypoint likelihood means an
    unsure pose (``item_confidence`` would read it as a sure absence)."""
    if not isinstance(label, ObjectLabels) or label.scores is None or len(label) == 0:
        return 0.0
    return float(label.scores.min())


DECODERS: Mapping[str, Decoder] = {
    "classifier": Decoder("classifier", _classifier),  # score: the top class's probability
    "heatmap": Decoder("heatmap", _heatmap, _animal_score),
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
