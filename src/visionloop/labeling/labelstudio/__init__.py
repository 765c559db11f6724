"""The Label Studio connector: ``push_items`` and ``pull_annotations`` over its REST API."""

from visionloop.labeling.labelstudio.client import LabelStudioClient, LabelStudioError
from visionloop.labeling.labelstudio.connection import LabelStudioProject, connect
from visionloop.labeling.labelstudio.pull import PullReport, pull_annotations
from visionloop.labeling.labelstudio.push import ITEM_FIELD, PushReport, push_items

__all__ = [
    "ITEM_FIELD",
    "LabelStudioClient",
    "LabelStudioError",
    "LabelStudioProject",
    "PullReport",
    "PushReport",
    "connect",
    "pull_annotations",
    "push_items",
]
