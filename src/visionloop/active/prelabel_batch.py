"""One batch of pre-labeling: decode items, predict, move labels back to full size.

Shared by the local executor (data-loader workers decode, this process predicts) and the Ray
executor (each actor decodes and predicts its batches), so both produce the same labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from visionloop.active.uncertainty import item_confidence
from visionloop.core.errors import VisionloopError
from visionloop.core.labels import Label
from visionloop.datasets.records import ImageReader
from visionloop.imaging.probe import ImageRejected
from visionloop.tasks.predictor import Predictor
from visionloop.tasks.rescale import rescale_label

__all__ = ["Decoded", "Predicted", "decode_item", "predict_decoded"]

#: (item id, pixels or None, full (height, width), error)
Decoded = tuple[int, npt.NDArray[np.uint8] | None, tuple[int, int], str]
#: (item id, label in full-image pixels, confidence)
Predicted = tuple[int, Label, float | None]


def decode_item(
    reader: ImageReader, item_id: int, uri: str, at_least: int | None, resize_to: tuple[int, int] | None
) -> Decoded:
    try:
        image, full = reader.reduced(uri, at_least, resize_to)
        return item_id, image, full, ""
    except ImageRejected as exc:  # names the file already
        return item_id, None, (0, 0), str(exc)
    except (VisionloopError, OSError) as exc:
        return item_id, None, (0, 0), f"{uri}: {exc}"


def predict_decoded(
    trained: Predictor, batch: Sequence[Decoded]
) -> tuple[list[Predicted], npt.NDArray[np.float32] | None, list[dict[str, str]]]:
    """Predictions and embedding rows of the decoded items, and the items that failed to decode."""
    failed = [{"item": str(item_id), "reason": error} for item_id, image, _, error in batch if image is None]
    good = [(item_id, image, full) for item_id, image, full, _ in batch if image is not None]
    if not good:
        return [], None, failed
    labels, rows = trained.predict_and_embed([image for _, image, _ in good])
    predicted: list[Predicted] = []
    for (item_id, image, full), label in zip(good, labels, strict=True):
        moved = rescale_label(label, (int(image.shape[0]), int(image.shape[1])), full)
        predicted.append((item_id, moved, item_confidence(moved)))
    return predicted, rows, failed
