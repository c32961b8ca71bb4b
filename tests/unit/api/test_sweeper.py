"""Which multipart uploads the sweeper aborts, without a server: a small fake of the two S3 calls it makes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lakehouse_api.uploads.sweeper import stale_uploads, sweep_incomplete_uploads

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def upload(key: str, age: dt.timedelta) -> dict[str, Any]:
    return {"Key": key, "UploadId": f"id-{key}", "Initiated": NOW - age}


class PagedUploads:
    """ListMultipartUploads in pages of `page_size`, and AbortMultipartUpload that may find one gone."""

    def __init__(self, uploads: list[dict[str, Any]], page_size: int = 2, gone: frozenset[str] = frozenset()) -> None:
        self.uploads = uploads
        self.page_size = page_size
        self.gone = gone
        self.aborted: list[str] = []

    def list_multipart_uploads(self, Bucket: str, KeyMarker: str = "", UploadIdMarker: str = "") -> dict[str, Any]:  # noqa: N803
        start = next((i + 1 for i, u in enumerate(self.uploads) if u["Key"] == KeyMarker), 0)
        page = self.uploads[start : start + self.page_size]
        more = start + self.page_size < len(self.uploads)
        answer: dict[str, Any] = {"Uploads": page, "IsTruncated": more}
        if more:
            answer |= {"NextKeyMarker": page[-1]["Key"], "NextUploadIdMarker": page[-1]["UploadId"]}
        return answer

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:  # noqa: N803
        if Key in self.gone:
            raise ClientError({"Error": {"Code": "NoSuchUpload"}}, "AbortMultipartUpload")
        if Key == "forbidden":
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "AbortMultipartUpload")
        self.aborted.append(Key)


def test_only_uploads_started_before_the_cut_off_are_stale() -> None:
    uploads = [upload("old", 2 * DAY), upload("fresh", dt.timedelta(hours=1)), upload("edge", DAY)]

    assert [u["Key"] for u in stale_uploads(uploads, NOW - DAY)] == ["old"]


def test_every_page_is_swept_and_fresh_uploads_are_left_alone() -> None:
    s3 = PagedUploads([upload(f"old-{i}", 3 * DAY) for i in range(5)] + [upload("streaming", dt.timedelta(minutes=5))])

    aborted = sweep_incomplete_uploads(s3, "uploads", DAY, now=NOW)

    assert aborted == s3.aborted == [f"old-{i}" for i in range(5)]


def test_an_upload_another_replica_aborted_first_is_not_an_error() -> None:
    s3 = PagedUploads([upload("a", 2 * DAY), upload("b", 2 * DAY)], gone=frozenset({"a"}))

    assert sweep_incomplete_uploads(s3, "uploads", DAY, now=NOW) == ["a", "b"]


def test_other_refusals_are_raised() -> None:
    with pytest.raises(ClientError, match="AccessDenied"):
        sweep_incomplete_uploads(PagedUploads([upload("forbidden", 2 * DAY)]), "uploads", DAY, now=NOW)
