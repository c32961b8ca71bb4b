"""The API over HTTP: one method per endpoint; errors arrive as problem+json and become ApiError."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from lakehouse_cli.multipart import MultipartUpload, file_chunks

RETRYABLE_STATUS = {502, 503, 504}


class ApiError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{problem.get('title', 'Error')} ({status}): {problem.get('detail', '')}")


class LakehouseClient:
    def __init__(self, url: str, api_key: str | None, timeout: float = 30.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        # Writes of a big body may stall while the server waits on S3; reads of a reply are quick.
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=httpx.Timeout(timeout, write=300.0), follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_success:
            return response.json()
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:500]}
        raise ApiError(response.status_code, problem)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None and v is not False}
        return self._json(self._http.get(path, params=clean))

    def upload(
        self,
        path: Path,
        dataset: str,
        *,
        ingest_engine: str | None = None,
        transform_engine: str | None = None,
        idempotency_key: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        attempts: int = 3,
    ) -> dict[str, Any]:
        """Streams the file; retries on network errors and 5xx with the same Idempotency-Key,
        so a retry after a lost answer returns the first run instead of ingesting twice."""
        fields = {"dataset": dataset}
        if ingest_engine:
            fields["ingest_engine"] = ingest_engine
        if transform_engine:
            fields["transform_engine"] = transform_engine
        form = MultipartUpload(fields=fields, filename=path.name, file_size=path.stat().st_size)
        headers = {**form.headers(), "Idempotency-Key": idempotency_key or f"cli-{uuid.uuid4().hex}"}
        for attempt in range(1, attempts + 1):
            try:
                body = self._counted(form.body(file_chunks(str(path))), form.content_length, progress)
                response = self._http.post("/api/v1/uploads", content=body, headers=headers)
                if response.status_code not in RETRYABLE_STATUS or attempt == attempts:
                    return self._json(response)
            except httpx.TransportError:
                if attempt == attempts:
                    raise
            time.sleep(2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _counted(chunks: Iterator[bytes], total: int, progress: Callable[[int, int], None] | None) -> Iterator[bytes]:
        sent = 0
        for chunk in chunks:
            yield chunk
            sent += len(chunk)
            if progress:
                progress(sent, total)
