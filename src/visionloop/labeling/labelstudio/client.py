"""A thin client for the few Label Studio REST endpoints the connector needs.

label-studio-sdk would pull in pandas, OpenCV, nltk and more for about eight endpoints, so this
speaks HTTP itself (httpx). Requests that are safe to repeat (GETs, and the connector's own
idempotent writes, which it reconciles before repeating) are retried with backoff on connection
errors, 429 and 5xx; others fail at once with an error naming the URL, the status and Label
Studio's message. The token is sent as ``Authorization: Token ...`` and never logged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from visionloop.core.errors import MissingDependencyError, VisionloopError

__all__ = ["LabelStudioClient", "LabelStudioError"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PAGE_SIZE = 1000


class LabelStudioError(VisionloopError):
    """Label Studio refused a request or could not be reached."""


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise MissingDependencyError("httpx", "labelstudio", "Talking to Label Studio") from exc
    return httpx


class LabelStudioClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        transport: Any = None,
    ) -> None:
        httpx = _httpx()
        self.url = url.rstrip("/")
        self.retries, self.backoff_s = retries, backoff_s
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Token {token}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            trust_env=False,  # never route 127.0.0.1 through a proxy from the environment
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry: bool | None = None,
        allow: tuple[int, ...] = (),
    ) -> Any:
        """Send one request; returns the decoded JSON body (None when empty or in ``allow``)."""
        httpx = _httpx()
        repeatable = method == "GET" if retry is None else retry
        attempts = self.retries + 1 if repeatable else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                if last:
                    raise LabelStudioError(
                        f"{method} {self.url}{path}: cannot reach Label Studio: {exc}"
                    ) from exc
                self._pause(attempt)
                continue
            if response.status_code in allow:
                return None
            if response.status_code in RETRY_STATUSES and not last:
                self._pause(attempt)
                continue
            if response.status_code >= 400:
                raise LabelStudioError(
                    f"{method} {self.url}{path}: HTTP {response.status_code}: {_message(response)}"
                )
            return response.json() if response.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(
        self, path: str, body: Any, *, retry: bool = False, params: Mapping[str, Any] | None = None
    ) -> Any:
        return self.request("POST", path, json=body, retry=retry, params=params)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body, retry=True)

    def tasks(self, project_id: int, *, query: Any = None, fields: str = "all") -> Iterator[dict[str, Any]]:
        """Every task of a project (optionally filtered by a Data Manager query), page by page."""
        import json as jsonlib

        params: dict[str, Any] = {"project": project_id, "fields": fields, "page_size": PAGE_SIZE}
        if query is not None:
            params["query"] = jsonlib.dumps(query)
        page = 1
        while True:
            body = self.request("GET", "/api/tasks", params={**params, "page": page}, allow=(404,))
            batch = [] if body is None else body.get("tasks", [])
            yield from batch
            if len(batch) < PAGE_SIZE:
                return
            page += 1

    def _pause(self, attempt: int) -> None:
        time.sleep(self.backoff_s * (2**attempt))


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text[:300] or response.reason_phrase)
    if isinstance(body, dict):
        detail = body.get("detail") or body
        errors = body.get("validation_errors")  # the useful part of a "Validation error" detail
        return (f"{detail}: {errors}" if errors else str(detail))[:500]
    return str(body)[:500]
