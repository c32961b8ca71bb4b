"""The platform's S3 client labels every part of a multipart upload as bytes (lakehouse.settings.PART_CONTENT_TYPE),
so SeaweedFS stores a text part as sent instead of gzipping it; the object's own Content-Type is untouched.

The requests are captured as botocore would send them (signed), and answered here without a server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from lakehouse.settings import PART_CONTENT_TYPE, S3Settings

CREATED = (
    b'<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>uploads</Bucket>'
    b"<Key>orders.csv</Key><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>"
)


class _Response:
    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.headers = headers
        self.content = body

    def stream(self, **_: Any) -> list[bytes]:
        return [self.content]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, dict[str, str]]]:
    """A client of the platform's settings, and the headers of each request it sent, by operation."""
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = S3Settings().client(max_attempts=1)
    headers: dict[str, dict[str, str]] = {}

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        headers[operation] = {name: value.decode() if isinstance(value, bytes) else value
                              for name, value in request.headers.items()}  # fmt: skip
        body = CREATED if operation == "CreateMultipartUpload" else b""
        raw = _Response(body, {"ETag": '"etag-1"'})
        return AWSResponse(request.url, 200, raw.headers, raw)

    client.meta.events.register("before-send.s3", answer)
    return client, headers


def test_a_part_goes_up_labelled_as_bytes_and_the_object_keeps_its_own_type(sent: tuple[Any, Any]) -> None:
    client, headers = sent
    upload = client.create_multipart_upload(Bucket="uploads", Key="orders.csv", ContentType="text/csv")
    client.upload_part(
        Bucket="uploads", Key="orders.csv", UploadId=upload["UploadId"], PartNumber=1, Body=b"order_id\n1\n" * 1000
    )
    client.put_object(Bucket="uploads", Key="small.csv", Body=b"order_id\n1\n", ContentType="text/csv")

    assert headers["UploadPart"]["Content-Type"] == PART_CONTENT_TYPE
    assert "content-type" in headers["UploadPart"]["Authorization"]  # set before the request was signed
    assert headers["CreateMultipartUpload"]["Content-Type"] == "text/csv"
    assert headers["PutObject"]["Content-Type"] == "text/csv"
