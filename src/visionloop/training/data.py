"""From a catalog snapshot to batches: records, the train/validation split and the dataset."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from visionloop.core.errors import ValidationError
from visionloop.core.schema import LabelSchema
from visionloop.datasets.records import LabeledRecord
from visionloop.models.config import ModelConfig
from visionloop.tasks.examples import example_from_label
from visionloop.tasks.spec import Batch, ModelFamily
from visionloop.training.augment import Augment
from visionloop.training.config import DataConfig

__all__ = ["ExampleDataset", "collate_with", "split_records"]


def _hash_fraction(record: LabeledRecord, seed: int) -> float:
    key = f"{seed}:{record.item_id if record.item_id is not None else record.uri}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64


def split_records(
    records: Sequence[LabeledRecord], config: DataConfig, seed: int
) -> tuple[list[LabeledRecord], list[LabeledRecord]]:
    """Labelled training and validation records.

    Unlabelled items never train. Items in the validation split validate; if the snapshot has
    none, a stable hash of each training item holds out ``val_fraction`` of them.
    """
    labelled = [record for record in records if record.label is not None]
    train = [record for record in labelled if record.split == config.train_split]
    val = [record for record in labelled if record.split == config.val_split]
    if not val and config.val_fraction > 0:
        val = [record for record in train if _hash_fraction(record, seed) < config.val_fraction]
        held_out = {id(record) for record in val}
        train = [record for record in train if id(record) not in held_out]
    if config.limit is not None:
        train, val = train[: config.limit], val[: config.limit]
    if not train:
        raise ValidationError(
            f"no labelled items in the {config.train_split!r} split of the snapshot; label some "
            "images or import labels first"
        )
    return train, val


class ExampleDataset(Dataset[tuple[torch.Tensor, Any, tuple[int, int]]]):
    """Decoded, augmented and encoded samples; sample ``i`` in epoch ``e`` is a pure function of
    (seed, e, i), whatever process or resume produced it."""

    def __init__(
        self,
        records: Sequence[LabeledRecord],
        read_image: Callable[[str], npt.NDArray[np.uint8]],
        schema: LabelSchema,
        family: ModelFamily,
        model_config: ModelConfig,
        augment: Augment | None = None,
        seed: int = 0,
    ) -> None:
        self.records = list(records)
        self.read_image = read_image
        self.schema = schema
        self.family = family
        self.model_config = model_config
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any, tuple[int, int]]:
        record = self.records[index]
        image = self.read_image(record.uri)
        example = example_from_label(
            image,
            record.label,
            self.schema,
            need_masks=self.family.needs_masks,
            need_keypoints=self.family.needs_keypoints,
        )
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            example = self.augment(example, rng)
        tensor, target = self.family.encode(example, self.model_config)
        return tensor, target, example.size


class collate_with:
    """The DataLoader ``collate_fn`` for a family: drops sizes into the batch, tensors to the family."""

    def __init__(self, family: ModelFamily) -> None:
        self.family = family

    def __call__(self, samples: list[tuple[torch.Tensor, Any, tuple[int, int]]]) -> Batch:
        return self.family.collate(
            [(tensor, target) for tensor, target, _ in samples], [size for _, _, size in samples]
        )
