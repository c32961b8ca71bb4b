"""Assertions shared by the API tests: problem+json shape, and nothing of an upload left in S3."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx

from tests.utils.upload_bodies import form

UPLOADS = "/api/v1/uploads"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 body of an error response, after checking its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


def post_upload(
    http: httpx.Client, data: bytes, path: str = UPLOADS, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    form_headers, body = form(data, **fields)
    return http.post(path, content=body, headers={**form_headers, **(headers or {})})


def wait_for_upload(http: httpx.Client, upload_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    upload: dict[str, Any] = {}
    while time.monotonic() < deadline:
        upload = http.get(f"{UPLOADS}/{upload_id}").raise_for_status().json()
        if upload["phase"] in ("Succeeded", "Failed"):
            return upload
        time.sleep(0.3)
    raise TimeoutError(f"{upload_id} not finished after {timeout}s: {upload}")


def wait_for_event(http: httpx.Client, upload_id: str, reason: str, timeout: float = 30) -> dict[str, Any]:
    """The upload once its Kubernetes events include `reason`: Kopf posts events in the background, so the
    last one may appear a moment after the status it reports."""
    deadline = time.monotonic() + timeout
    upload: dict[str, Any] = {}
    while time.monotonic() < deadline:
        upload = http.get(f"{UPLOADS}/{upload_id}").raise_for_status().json()
        if reason in {e["reason"] for e in upload.get("events") or []}:
            return upload
        time.sleep(0.3)
    raise TimeoutError(f"no {reason} event for {upload_id} after {timeout}s: {upload.get('events')}")


def leftovers(s3: Any, dataset: str, upload_id: str) -> list[str]:
    """Objects and unfinished multipart uploads of an upload (today's and yesterday's date, for midnight)."""
    found = []
    today = dt.datetime.now(dt.UTC).date()
    for day in (today, today - dt.timedelta(days=1)):
        prefix = f"{dataset}/{day.isoformat()}/{upload_id}/"
        found += [o["Key"] for o in s3.list_objects_v2(Bucket="uploads", Prefix=prefix).get("Contents", [])]
        found += [u["Key"] for u in s3.list_multipart_uploads(Bucket="uploads", Prefix=prefix).get("Uploads", [])]
    return found
