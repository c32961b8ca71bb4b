"""An in-memory stand-in for the boto3 S3 client calls the API's upload path makes."""

from __future__ import annotations

import threading
from typing import Any


class FakeS3:
    """Records calls; keeps parts so the assembled object can be compared; tracks parts in flight."""

    def __init__(self, fail_part: int | None = None) -> None:
        self.calls: list[str] = []
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.fail_part = fail_part
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803 - boto3's names
        self.calls.append("put_object")
        self.objects[Key] = Body

    def create_multipart_upload(self, Bucket: str, Key: str, ContentType: str) -> dict[str, str]:  # noqa: N803
        self.calls.append("create_multipart_upload")
        return {"UploadId": "mpu-1"}

    def upload_part(self, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes) -> dict[str, str]:  # noqa: N803
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            threading.Event().wait(0.01)
            if PartNumber == self.fail_part:
                raise ConnectionError("S3 went away")
            self.parts[PartNumber] = Body
            return {"ETag": f'"etag-{PartNumber}"'}
        finally:
            with self._lock:
                self.in_flight -= 1

    def complete_multipart_upload(self, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any) -> None:  # noqa: N803
        self.calls.append("complete_multipart_upload")
        numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
        assert numbers == sorted(numbers) and all(p["ETag"] for p in MultipartUpload["Parts"])
        self.objects[Key] = b"".join(self.parts[n] for n in numbers)

    def delete_object(self, Bucket: str, Key: str) -> None:  # noqa: N803
        self.calls.append("delete_object")
        self.objects.pop(Key, None)

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:  # noqa: N803
        self.calls.append("abort_multipart_upload")
        self.parts.clear()
