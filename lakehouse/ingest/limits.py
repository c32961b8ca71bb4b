"""A dataset contract's limits on one upload: its size (max_file_bytes) and its share of rejected rows
(max_reject_ratio, when enforce_max_reject_ratio says a run above it fails).

Both are facts of the bytes, so breaking one is an InputError: the run fails at once and is never retried.
"""

from __future__ import annotations

from lakehouse.contracts.model import DatasetContract
from lakehouse.ingest.errors import FileTooLargeError, TooManyRejectsError
from lakehouse.ingest.validation import CheckResult

# The failing checks a TooManyRejects message names, most rows first.
_NAMED_CHECKS = 5


def file_too_large_message(contract: DatasetContract, size: int) -> str | None:
    """Why an upload of `size` bytes is refused, or None when the contract allows it."""
    limit = contract.max_file_bytes
    if limit is None or size <= limit:
        return None
    return (
        f"the file is {size} bytes, larger than the {contract.name} contract's limit of {limit} bytes "
        "(max_file_bytes); split it into smaller uploads, or raise the limit in the contract"
    )


def check_file_size(contract: DatasetContract, size: int) -> None:
    if message := file_too_large_message(contract, size):
        raise FileTooLargeError(message)


def rejecting_checks(contract: DatasetContract, checks: list[CheckResult]) -> list[CheckResult]:
    """The checks that rejected rows, most rows first: a missing value of an optional column rejects none."""
    optional = {c.target_name for c in contract.columns if not c.required}
    rejecting = [
        c
        for c in checks
        if c.failed and c.check_name != "row_count" and not (c.check_name == "not_null" and c.column in optional)
    ]
    return sorted(rejecting, key=lambda c: -c.failed)


def check_reject_ratio(
    contract: DatasetContract, input_rows: int, rejected_rows: int, checks: list[CheckResult]
) -> None:
    """Fails a run whose rejected share is above max_reject_ratio, when the contract enforces it."""
    if not contract.enforce_max_reject_ratio or not input_rows:
        return
    ratio = rejected_rows / input_rows
    if ratio <= contract.max_reject_ratio:
        return
    failing = rejecting_checks(contract, checks)
    named = ", ".join(
        f"{c.check_name}{f' on {c.column}' if c.column and c.column != c.check_name else ''} ({c.failed} rows)"
        for c in failing[:_NAMED_CHECKS]
    )
    raise TooManyRejectsError(
        f"{rejected_rows} of {input_rows} rows ({ratio:.2%}) were rejected, above the {contract.name} contract's "
        f"max_reject_ratio of {contract.max_reject_ratio:g}"
        + (f"; failed checks: {named}" if named else "; the rejected rows could not be parsed as rows")
        + f"; nothing was written. See each row's reasons with `lakehouse dataset check FILE --dataset "
        f"{contract.name}`, then fix the file, or the contract (null_markers, formats, max_reject_ratio)"
    )
