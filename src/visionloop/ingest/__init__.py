"""Bring images from a folder or bucket prefix into the catalog."""

from visionloop.ingest.ingest import AUTO_SPLIT, IngestOptions, IngestReport, Rejection, ingest

__all__ = ["AUTO_SPLIT", "IngestOptions", "IngestReport", "Rejection", "ingest"]
