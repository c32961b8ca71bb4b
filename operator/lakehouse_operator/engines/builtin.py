"""Ingest inside the operator process with Python and Arrow, for clusters without NiFi."""

from __future__ import annotations

from typing import Any

from lakehouse.ingest.builtin import ingest_upload
from lakehouse.ingest.errors import InputError
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import ObjectNotFoundError, S3Location
from lakehouse_operator.engines.base import IngestEngine, IngestOutcome, RunContext, RunRejectedError


class BuiltinIngestEngine(IngestEngine):
    runs_in_process = True

    def __init__(self, s3: Any, raw_bucket: str, quarantine_bucket: str) -> None:
        self._s3 = s3
        self._raw_bucket = raw_bucket
        self._quarantine_bucket = quarantine_bucket

    def ingest(self, run: RunContext) -> IngestOutcome:
        paths = IngestPaths.for_run(
            run.dataset, run.processing_date, run.upload_id, self._raw_bucket, self._quarantine_bucket
        )
        try:
            report = ingest_upload(
                self._s3,
                run.contract,
                S3Location.parse(run.source_uri),
                run.source_format,  # type: ignore[arg-type]
                run.upload_id,
                paths,
                run.source_sha256,
            )
        except ObjectNotFoundError as error:
            raise RunRejectedError(
                FailureReason.SOURCE_NOT_FOUND, f"{error}; upload the file again to start a new run"
            ) from error
        except InputError as error:  # the file itself: no retry can fix it, only server faults are retried
            raise RunRejectedError(error.reason, str(error)) from error
        return IngestOutcome(
            input_rows=report.input_rows,
            valid_rows=report.valid_rows,
            rejected_rows=report.rejected_rows,
            raw_uri=paths.raw.uri,
            quarantine_uri=paths.quarantine.uri if report.rejected_rows else None,
            bytes_in=report.bytes_in,
            checks=report.checks,
        )
