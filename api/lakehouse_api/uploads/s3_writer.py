"""One S3 object written from a stream: parts are uploaded while the next one is being received.

Memory stays at about `1 + max_in_flight` parts whatever the file size: the one filling and the
ones being sent. More than one in flight hides S3's per-part latency.
Nothing is visible in the bucket until `complete`; `abort` discards the uploaded parts.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any

from starlette.concurrency import run_in_threadpool

from lakehouse.storage.s3 import S3Location


class S3StreamWriter:
    def __init__(self, s3: Any, location: S3Location, part_size: int, max_in_flight: int = 2) -> None:
        self._s3 = s3
        self.location = location
        self._part_size = part_size
        # Set by the caller once it knows the format (before the first part is sent).
        self.content_type = "application/octet-stream"
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self._multipart_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: deque[asyncio.Future[None]] = deque()
        self._max_in_flight = max_in_flight
        self._completed = False
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self._part_size:
            await self._send_part()

    async def complete(self) -> None:
        if self._multipart_id is None:
            # Small files: one PUT instead of three multipart calls.
            body = bytes(self._buffer)
            self._buffer = bytearray()
            await run_in_threadpool(self._sha256.update, body)
            await run_in_threadpool(self._put, body)
        else:
            if self._buffer:
                await self._send_part()  # the last part may be smaller than the minimum
            await self._wait_in_flight(0)
            await run_in_threadpool(self._complete_multipart)
        self._completed = True

    async def abort(self) -> None:
        """Discards an unfinished upload. Never raises: it runs on error paths. A completed object stays."""
        try:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            self._in_flight.clear()
            if self._multipart_id is not None and not self._completed:
                await run_in_threadpool(
                    self._s3.abort_multipart_upload,
                    Bucket=self.location.bucket,
                    Key=self.location.key,
                    UploadId=self._multipart_id,
                )
        except Exception:
            pass  # an upload that cannot be aborted now is aborted later by the sweeper (sweeper.py)
        finally:
            self._buffer = bytearray()

    async def _send_part(self) -> None:
        # One immutable copy per part, and the buffer freed at once: a part in flight then holds its bytes once.
        part, self._buffer = bytes(self._buffer), bytearray()
        # hashlib releases the GIL on large buffers, so hashing in a thread keeps the event loop free.
        await run_in_threadpool(self._sha256.update, part)
        await self._wait_in_flight(self._max_in_flight - 1)  # bounds memory
        if self._multipart_id is None:
            created = await run_in_threadpool(
                self._s3.create_multipart_upload,
                Bucket=self.location.bucket,
                Key=self.location.key,
                ContentType=self.content_type,
            )
            self._multipart_id = created["UploadId"]
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        self._in_flight.append(asyncio.ensure_future(run_in_threadpool(self._upload_part, number, part)))

    async def _wait_in_flight(self, at_most: int) -> None:
        """Until at most `at_most` parts are still being sent; a failed part raises here."""
        while len(self._in_flight) > at_most:
            await self._in_flight.popleft()

    def _upload_part(self, number: int, body: bytes) -> None:
        response = self._s3.upload_part(
            Bucket=self.location.bucket,
            Key=self.location.key,
            UploadId=self._multipart_id,
            PartNumber=number,
            Body=body,
        )
        self._parts[number - 1]["ETag"] = response["ETag"]

    def _complete_multipart(self) -> None:
        self._s3.complete_multipart_upload(
            Bucket=self.location.bucket,
            Key=self.location.key,
            UploadId=self._multipart_id,
            MultipartUpload={"Parts": self._parts},
        )

    def _put(self, body: bytes) -> None:
        self._s3.put_object(
            Bucket=self.location.bucket, Key=self.location.key, Body=body, ContentType=self.content_type
        )
