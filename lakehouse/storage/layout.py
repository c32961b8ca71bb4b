"""Where every object of a run lives: the one place that builds object keys.

    uploads/<dataset>/<upload date>/<upload id>/<file name>      the file as uploaded
    raw/<dataset>/<processing date>/<upload id>.parquet          the valid rows, typed
    quarantine/<dataset>/<processing date>/<upload id>.parquet   the rejected rows and why
    raw/_nifi/<dataset>/<processing date>/<upload id>.json       NiFi's step result for the run

Keys start with the dataset and a date, so a dataset's objects of one day list under one prefix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lakehouse.storage.s3 import S3Location

NIFI_RESULTS_PREFIX = "_nifi"


def upload_location(bucket: str, dataset: str, upload_id: str, filename: str, day: dt.date) -> S3Location:
    return S3Location(bucket, f"{dataset}/{day.isoformat()}/{upload_id}/{filename}")


def nifi_result_location(raw_bucket: str, dataset: str, processing_date: dt.date, upload_id: str) -> S3Location:
    return S3Location(raw_bucket, f"{NIFI_RESULTS_PREFIX}/{dataset}/{processing_date.isoformat()}/{upload_id}.json")


@dataclass(frozen=True)
class IngestPaths:
    """Where an ingest engine writes a run's raw and quarantine rows (every engine writes the same)."""

    raw: S3Location
    quarantine: S3Location

    @classmethod
    def for_run(
        cls, dataset: str, processing_date: dt.date, upload_id: str, raw_bucket: str, quarantine_bucket: str
    ) -> IngestPaths:
        key = f"{dataset}/{processing_date.isoformat()}/{upload_id}.parquet"
        return cls(S3Location(raw_bucket, key), S3Location(quarantine_bucket, key))
