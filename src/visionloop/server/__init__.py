"""The HTTP layer: REST prediction, the registry's state-changing routes, health and metrics, and
the labeling-tool protocols (Label Studio ML backend, CVAT serverless detector)."""

from visionloop.server.app import create_app
from visionloop.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
