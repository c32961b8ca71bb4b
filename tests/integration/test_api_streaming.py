"""A 1 GiB upload streams through the API with bounded memory.

The file is generated while it is sent, so it never exists on disk or whole in memory on either
side. The API runs in a namespace of its own that no operator watches: the point is the upload,
and ingesting a gigabyte would tie up the shared stack's operator for minutes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from lakehouse_cli.multipart import MultipartUpload

from lakehouse.storage.s3 import S3Location
from tests.utils.api_process import process_memory_mib, running_api
from tests.utils.stack import stack_env
from tests.utils.upload_bodies import GeneratedCsv

pytestmark = pytest.mark.integration
GIB = 1024**3
PEAK_RSS_CEILING_MIB = 300


def test_one_gib_upload_streams_with_bounded_memory(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    tmp_path: Path,
    record_property: Any,
) -> None:
    stack_env("KUBECONFIG", "S3_ENDPOINT_URL")
    csv = GeneratedCsv.of_size(GIB)
    upload = MultipartUpload(fields={"dataset": "orders"}, filename="big-orders.csv", file_size=csv.size)
    digest = hashlib.sha256()

    def hashed_chunks() -> Iterator[bytes]:
        for chunk in csv.chunks():
            digest.update(chunk)
            yield chunk

    env = {"LAKEHOUSE_MAX_UPLOAD_BYTES": str(2 * GIB)}
    with running_api(run_namespace, tmp_path / "api.log", env) as api:
        before = process_memory_mib(api.pid)
        started = time.monotonic()
        response = httpx.post(
            f"{api.url}/api/v1/uploads",
            content=upload.body(hashed_chunks()),
            headers={**upload.headers(), **api.headers},
            timeout=httpx.Timeout(60, write=600),
        )
        seconds = time.monotonic() - started
        after = process_memory_mib(api.pid)

    assert response.status_code == 202, response.text
    accepted = response.json()
    throughput = csv.size / seconds / 1e6
    record_property("upload_seconds", round(seconds, 1))
    record_property("upload_mb_per_s", round(throughput, 1))
    record_property("peak_rss_mib", round(after["VmHWM"], 1))
    print(
        f"\n1 GiB upload: {seconds:.1f}s, {throughput:.1f} MB/s; API RSS before {before['VmRSS']:.0f} MiB, "
        f"peak {after['VmHWM']:.0f} MiB"
    )
    location = S3Location.parse(accepted["objectUri"])
    try:
        assert after["VmHWM"] < PEAK_RSS_CEILING_MIB, after
        # Growth over the idle process: about (1 + parts in flight) parts of 8 MiB, plus allocator slack.
        assert after["VmHWM"] - before["VmHWM"] < 150, (before, after)
        assert accepted["sizeBytes"] == csv.size and accepted["sha256"] == digest.hexdigest()
        assert s3.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"] == csv.size
        run = custom_objects.get_namespaced_custom_object(
            "lakehouse.dev", "v1alpha1", run_namespace, "ingestionruns", accepted["runName"]
        )
        assert run["spec"]["source"]["sizeBytes"] == csv.size
    finally:
        s3.delete_object(Bucket=location.bucket, Key=location.key)
        custom_objects.delete_namespaced_custom_object(
            "lakehouse.dev", "v1alpha1", run_namespace, "ingestionruns", accepted["runName"]
        )
