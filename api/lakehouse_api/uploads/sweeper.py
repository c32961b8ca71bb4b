"""Aborting the multipart uploads of the uploads bucket that nobody will finish.

An API process that dies mid-upload (SIGKILL, OOM kill, a lost node) cannot abort its S3 multipart
upload, and its parts would be kept, invisible and billed, forever. A bucket lifecycle rule
(AbortIncompleteMultipartUpload) is the usual cure, but the stack's S3 (SeaweedFS) only stores that rule:
it is applied by SeaweedFS's separate admin + worker processes, in whole days. So every API process
sweeps the bucket itself, every `LAKEHOUSE_UPLOAD_SWEEP_INTERVAL_SECONDS`: a multipart upload started
more than `LAKEHOUSE_UPLOAD_SWEEP_AGE_SECONDS` ago is aborted. Aborting is idempotent, so replicas
sweeping together are harmless. The age must exceed the longest upload a client may take, since an
upload still streaming when it passes that age is aborted too (and its client gets an error).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("lakehouse_api.uploads")


def stale_uploads(uploads: Iterable[dict[str, Any]], started_before: dt.datetime) -> list[dict[str, Any]]:
    """The multipart uploads (ListMultipartUploads entries) initiated before `started_before`."""
    return [upload for upload in uploads if upload["Initiated"] < started_before]


def _multipart_uploads(s3: Any, bucket: str) -> Iterable[dict[str, Any]]:
    markers: dict[str, str] = {}
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, **markers)
        yield from page.get("Uploads", [])
        if not page.get("IsTruncated"):
            return
        markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}


def sweep_incomplete_uploads(s3: Any, bucket: str, max_age: dt.timedelta, now: dt.datetime | None = None) -> list[str]:
    """Aborts the bucket's multipart uploads older than `max_age`; returns the keys of those it aborted."""
    started_before = (now or dt.datetime.now(dt.UTC)) - max_age
    aborted = []
    for upload in stale_uploads(_multipart_uploads(s3, bucket), started_before):
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":  # another replica was first
                raise
        aborted.append(upload["Key"])
    return aborted


async def sweep_periodically(s3: Any, bucket: str, max_age: dt.timedelta, interval_seconds: float) -> None:
    """Sweeps now and then every interval until cancelled; an unreachable S3 only delays the next sweep."""
    while True:
        try:
            aborted = await run_in_threadpool(sweep_incomplete_uploads, s3, bucket, max_age)
            if aborted:
                log.info("aborted %d incomplete multipart uploads older than %s: %s", len(aborted), max_age, aborted)
        except (BotoCoreError, ClientError) as error:
            log.warning("could not sweep incomplete multipart uploads of bucket %s: %s", bucket, error)
        await asyncio.sleep(interval_seconds)
