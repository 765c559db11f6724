"""Where trigger events come from: listing a folder or bucket prefix, an SQS queue of S3 event
notifications, or the clock.

Each source yields :class:`Occurrence`\\ s whose ``identity`` says when two deliveries are the
same event: an object's URI with its fingerprint (so an overwritten object triggers again), a
queue record's object with its sequencer (S3 orders notifications per key with it), a schedule
slot ``floor(now / every_s)`` (so two watchers in one slot fire once). A local file triggers
only once it has been left unchanged for ``settle_s`` seconds, since it may still be being
written; an S3 object is whole the moment it can be listed.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import posixpath
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from visionloop.core.errors import ConfigError
from visionloop.project import Project
from visionloop.project.config import TriggerConfig
from visionloop.storage import is_remote

__all__ = ["Occurrence", "object_occurrences", "queue_occurrences", "schedule_occurrence"]


@dataclass(frozen=True)
class Occurrence:
    identity: str
    description: str
    payload: dict[str, Any] = field(default_factory=dict)
    receipt: str | None = None  # an SQS receipt handle: delete the message once recorded


def object_payload(uri: str) -> dict[str, str]:
    """What pipeline parameters may name about an object: ``{uri}``, ``{name}``, ``{stem}``, ``{folder}``."""
    name = posixpath.basename(uri.rstrip("/"))
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return {"uri": uri, "name": name, "stem": stem, "folder": uri[: len(uri) - len(name)].rstrip("/")}


def object_occurrences(
    project: Project, trigger: TriggerConfig, now: float | None = None
) -> Iterator[Occurrence]:
    """Objects under the trigger's source that match its pattern (and, if local, have settled)."""
    assert trigger.source is not None  # noqa: S101 - TriggerConfig requires it
    now = time.time() if now is None else now
    filesystem = project.filesystem_for(trigger.source)
    for entry in filesystem.list_files():
        if not fnmatch.fnmatch(posixpath.basename(entry.uri), trigger.pattern):
            continue
        uri = _plain_uri(entry.uri, trigger.source)
        if not is_remote(uri):
            try:
                age = now - os.stat(uri).st_mtime
            except OSError:
                continue
            if age < trigger.settle_s:
                continue
        yield Occurrence(f"{uri}@{entry.fingerprint}", f"new object {uri}", object_payload(uri))


def queue_occurrences(
    project: Project, trigger: TriggerConfig, max_messages: int = 10
) -> Iterator[Occurrence]:
    """S3 ObjectCreated notifications from the trigger's SQS queue (one receive call)."""
    client = _sqs_client(project)
    answer = client.receive_message(
        QueueUrl=trigger.queue, MaxNumberOfMessages=max_messages, WaitTimeSeconds=1
    )
    for message in answer.get("Messages", []):
        records = _records(message.get("Body", ""))
        matched = False
        for record in records:
            bucket = record.get("s3", {}).get("bucket", {}).get("name")
            obj = record.get("s3", {}).get("object", {})
            key = unquote_plus(str(obj.get("key", "")))
            if not bucket or not key or not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            uri = f"s3://{bucket}/{key}"
            if not fnmatch.fnmatch(posixpath.basename(key), trigger.pattern) or not _under(
                uri, trigger.source
            ):
                continue
            matched = True
            version = obj.get("sequencer") or obj.get("eTag") or obj.get("size")
            yield Occurrence(
                f"{uri}@{version}", f"new object {uri} (queue)", object_payload(uri), message["ReceiptHandle"]
            )
        if not matched:  # test events and objects this trigger ignores: consume them
            yield Occurrence("", "ignored queue message", {}, message["ReceiptHandle"])


def delete_message(project: Project, trigger: TriggerConfig, receipt: str) -> None:
    _sqs_client(project).delete_message(QueueUrl=trigger.queue, ReceiptHandle=receipt)


def schedule_occurrence(trigger: TriggerConfig, now: float | None = None) -> Occurrence:
    assert trigger.every_s is not None  # noqa: S101 - TriggerConfig requires it
    slot = math.floor((time.time() if now is None else now) / trigger.every_s)
    return Occurrence(
        f"slot:{slot}", f"schedule slot {slot} (every {trigger.every_s:g} s)", {"slot": str(slot)}
    )


def _records(body: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # not an event (RecursionError: nested too deeply)
        return []
    if isinstance(parsed, dict) and isinstance(parsed.get("Message"), str):  # delivered through SNS
        return _records(parsed["Message"])
    records = parsed.get("Records") if isinstance(parsed, dict) else None
    return [record for record in records if isinstance(record, dict)] if isinstance(records, list) else []


def _under(uri: str, source: str | None) -> bool:
    return source is None or uri.startswith(source.rstrip("/") + "/")


def _plain_uri(uri: str, source: str) -> str:
    """Listing says ``file:///a/b`` for local files; events and parameters use plain paths."""
    if uri.startswith("file://") and not source.startswith("file://"):
        return uri[len("file://") :]
    return uri


def _sqs_client(project: Project) -> Any:
    if project.config.s3.anon:
        raise ConfigError("an SQS queue cannot be read anonymously; give S3 credentials or use polling")
    return project.aws_client("sqs")
