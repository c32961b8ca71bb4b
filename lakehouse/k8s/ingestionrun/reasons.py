"""Why a run failed: the reason on its Failed condition, its Warning Event and its `ingestion-failed` event.

One home for every reason the platform can set, so each has a section in docs/troubleshooting.md saying what
it means and what to do (tests/unit/test_docs.py holds the two equal).
"""

from __future__ import annotations

from enum import StrEnum


class FailureReason(StrEnum):
    # The run's spec, its contract or the install refuse it (checked before anything is read).
    UNKNOWN_DATASET = "UnknownDataset"
    ENGINE_UNAVAILABLE = "EngineUnavailable"
    SOURCE_NOT_ALLOWED = "SourceNotAllowed"
    TARGET_NOT_ALLOWED = "TargetNotAllowed"
    SOURCE_NOT_FOUND = "SourceNotFound"
    # The file cannot be ingested as it is (lakehouse/ingest/errors.py).
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    UNREADABLE_SOURCE = "UnreadableSource"
    INVALID_ENCODING = "InvalidEncoding"
    DUPLICATE_COLUMNS = "DuplicateColumns"
    UNSUPPORTED_TYPE = "UnsupportedType"
    MISSING_COLUMNS = "MissingColumns"
    WRONG_DELIMITER = "WrongDelimiter"
    UNSUPPORTED_INPUT = "UnsupportedInput"
    # The dataset contract's limits (max_file_bytes, max_reject_ratio with enforce_max_reject_ratio).
    FILE_TOO_LARGE = "FileTooLarge"
    TOO_MANY_REJECTS = "TooManyRejects"
    # The engines.
    INGEST_STEP_ERROR = "IngestStepError"
    NIFI_TIMED_OUT = "NiFiTimedOut"
    NIFI_UNAVAILABLE = "NiFiUnavailable"
    CONTRACT_MISMATCH = "ContractMismatch"
    RAW_SCHEMA_MISMATCH = "RawSchemaMismatch"
    INCOMPATIBLE_CONTRACT = "IncompatibleContract"
    SPARK_JOB_REJECTED = "SparkJobRejected"
    SPARK_APPLICATION_FAILED = "SparkApplicationFailed"
    SPARK_TIMED_OUT = "SparkTimedOut"
    # A server fault outlasted every attempt of a stage.
    RETRIES_EXHAUSTED = "RetriesExhausted"
