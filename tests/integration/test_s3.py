"""S3 of the local stack (SeaweedFS): buckets, objects, ranged reads, multipart uploads, signatures.

Talks to the real server at S3_ENDPOINT_URL with the stack's credentials (`eval "$(make -s env)"`).
Every object it writes lives under one unique prefix and is deleted at the end.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration

STACK_BUCKETS = ("uploads", "raw", "warehouse", "quarantine")
TEST_BUCKET = "uploads"
MIB = 1024 * 1024


def make_client(
    *, access_key_id: str | None = None, secret_access_key: str | None = None, unsigned: bool = False
) -> Any:
    env = stack_env("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        signature_version=UNSIGNED if unsigned else "s3v4",
    )
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=access_key_id or env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret_access_key or env["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


@pytest.fixture(scope="module")
def s3_client() -> Any:
    return make_client()


@pytest.fixture(scope="module")
def prefix(s3_client: Any) -> Iterator[str]:
    """A key prefix of this module's own; everything under it is removed afterwards."""
    prefix = f"test-s3-{uuid.uuid4().hex[:12]}/"
    yield prefix
    uploads = s3_client.list_multipart_uploads(Bucket=TEST_BUCKET, Prefix=prefix).get("Uploads", [])
    for upload in uploads:
        s3_client.abort_multipart_upload(Bucket=TEST_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=TEST_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            s3_client.delete_object(Bucket=TEST_BUCKET, Key=obj["Key"])
    left = s3_client.list_objects_v2(Bucket=TEST_BUCKET, Prefix=prefix).get("KeyCount", 0)
    assert left == 0, f"{left} test objects left under s3://{TEST_BUCKET}/{prefix}"


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_stack_buckets_exist(s3_client: Any) -> None:
    names = {bucket["Name"] for bucket in s3_client.list_buckets()["Buckets"]}
    assert set(STACK_BUCKETS) <= names
    for bucket in STACK_BUCKETS:
        s3_client.head_bucket(Bucket=bucket)


def test_put_get_and_list_with_prefix(s3_client: Any, prefix: str) -> None:
    objects = {
        f"{prefix}listing/a/1.json": b'{"n": 1}',
        f"{prefix}listing/a/2.json": b'{"n": 2}',
        f"{prefix}listing/a/nested/3.json": b'{"n": 3}',
        f"{prefix}listing/b/4.json": b'{"n": 4}',
    }
    for key, body in objects.items():
        s3_client.put_object(Bucket=TEST_BUCKET, Key=key, Body=body, ContentType="application/json")

    listed = s3_client.list_objects_v2(Bucket=TEST_BUCKET, Prefix=f"{prefix}listing/a/")
    assert sorted(obj["Key"] for obj in listed["Contents"]) == sorted(k for k in objects if "/a/" in k)
    assert {obj["Key"]: obj["Size"] for obj in listed["Contents"]} == {
        k: len(v) for k, v in objects.items() if "/a/" in k
    }

    delimited = s3_client.list_objects_v2(Bucket=TEST_BUCKET, Prefix=f"{prefix}listing/", Delimiter="/")
    assert sorted(p["Prefix"] for p in delimited["CommonPrefixes"]) == [
        f"{prefix}listing/a/",
        f"{prefix}listing/b/",
    ]

    got = s3_client.get_object(Bucket=TEST_BUCKET, Key=f"{prefix}listing/b/4.json")
    assert got["Body"].read() == objects[f"{prefix}listing/b/4.json"]
    assert got["ContentType"] == "application/json"

    with pytest.raises(ClientError) as missing:
        s3_client.get_object(Bucket=TEST_BUCKET, Key=f"{prefix}listing/does-not-exist")
    assert error_code(missing) == (404, "NoSuchKey")


def test_ranged_get_returns_exactly_the_requested_bytes(s3_client: Any, prefix: str) -> None:
    body = bytes(range(256)) * 8
    key = f"{prefix}range/blob.bin"
    s3_client.put_object(Bucket=TEST_BUCKET, Key=key, Body=body)

    got = s3_client.get_object(Bucket=TEST_BUCKET, Key=key, Range="bytes=10-19")

    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert got["Body"].read() == body[10:20]


def test_multipart_upload_is_assembled_in_order(s3_client: Any, prefix: str) -> None:
    key = f"{prefix}multipart/large.bin"
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB + 123), os.urandom(MIB // 2)]
    expected = b"".join(parts_data)

    upload_id = s3_client.create_multipart_upload(Bucket=TEST_BUCKET, Key=key)["UploadId"]
    parts = []
    for number, data in enumerate(parts_data, start=1):
        etag = s3_client.upload_part(Bucket=TEST_BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=data)[
            "ETag"
        ]
        parts.append({"PartNumber": number, "ETag": etag})
    listed_parts = s3_client.list_parts(Bucket=TEST_BUCKET, Key=key, UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed_parts] == [1, 2, 3]
    s3_client.complete_multipart_upload(
        Bucket=TEST_BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    head = s3_client.head_object(Bucket=TEST_BUCKET, Key=key)
    assert head["ContentLength"] == len(expected)
    assert head["ETag"].strip('"').endswith("-3")
    got = s3_client.get_object(Bucket=TEST_BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(expected).hexdigest()


def test_wrong_secret_key_is_refused(prefix: str) -> None:
    env = stack_env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    wrong_secret = make_client(secret_access_key=env["AWS_SECRET_ACCESS_KEY"] + "x")

    with pytest.raises(ClientError) as listing:
        wrong_secret.list_buckets()
    assert error_code(listing) == (403, "SignatureDoesNotMatch")

    with pytest.raises(ClientError) as writing:
        wrong_secret.put_object(Bucket=TEST_BUCKET, Key=f"{prefix}refused/x", Body=b"x")
    assert error_code(writing) == (403, "SignatureDoesNotMatch")


def test_unknown_access_key_and_anonymous_requests_are_refused(s3_client: Any, prefix: str) -> None:
    key = f"{prefix}private/object.txt"
    s3_client.put_object(Bucket=TEST_BUCKET, Key=key, Body=b"private")

    unknown = make_client(access_key_id="AKIA" + uuid.uuid4().hex[:16].upper(), secret_access_key="x" * 40)
    with pytest.raises(ClientError) as unknown_key:
        unknown.get_object(Bucket=TEST_BUCKET, Key=key)
    assert error_code(unknown_key) == (403, "InvalidAccessKeyId")

    anonymous = make_client(unsigned=True)
    with pytest.raises(ClientError) as no_signature:
        anonymous.get_object(Bucket=TEST_BUCKET, Key=key)
    assert error_code(no_signature)[0] == 403
