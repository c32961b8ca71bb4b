"""Why a file cannot be ingested: the errors that fail a run at once, with its Failed reason.

The same bytes fail the same way on every attempt, so retrying cannot help: an engine turns an
InputError into a Failed run with `reason` and the message, which says what is wrong (naming the
column or line) and what to do. Only faults of the servers around the file (S3, the catalog) are
retried. Every engine that runs `lakehouse.ingest` (built-in, NiFi's step) maps them the same way.
"""

from __future__ import annotations

from typing import ClassVar

from lakehouse.k8s.ingestionrun.reasons import FailureReason


class InputError(ValueError):
    """The file, as it is, cannot be ingested."""

    reason: ClassVar[FailureReason]

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column  # the column the error concerns, when there is one


class ChecksumMismatchError(InputError):
    reason = FailureReason.CHECKSUM_MISMATCH


class UnreadableSourceError(InputError):
    """The file as a whole cannot be read in the declared format."""

    reason = FailureReason.UNREADABLE_SOURCE


class InvalidEncodingError(InputError):
    """A text file (CSV, JSON lines) that is not UTF-8."""

    reason = FailureReason.INVALID_ENCODING


class DuplicateColumnsError(InputError):
    reason = FailureReason.DUPLICATE_COLUMNS


class UnsupportedTypeError(InputError):
    """A column the contract wants has a type no contract type can be read from (a Parquet list, struct, map)."""

    reason = FailureReason.UNSUPPORTED_TYPE


class MissingColumnsError(InputError):
    reason = FailureReason.MISSING_COLUMNS

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message, missing[0])
        self.missing = missing


class WrongDelimiterError(MissingColumnsError):
    """The header is one column that holds the contract's names separated by something other than commas."""

    reason = FailureReason.WRONG_DELIMITER


class UnsupportedInputError(InputError):
    """Reading failed in a way the readers do not recognise; deterministic all the same, so not retried."""

    reason = FailureReason.UNSUPPORTED_INPUT


class FileTooLargeError(InputError):
    """The upload is larger than its contract's max_file_bytes."""

    reason = FailureReason.FILE_TOO_LARGE


class TooManyRejectsError(InputError):
    """More of the file's rows were rejected than its contract's max_reject_ratio allows (when enforced)."""

    reason = FailureReason.TOO_MANY_REJECTS
