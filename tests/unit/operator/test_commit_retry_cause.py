"""Which failed bronze commits count as retried, and under which cause (lakehouse_iceberg_commit_retries_total)."""

from __future__ import annotations

import pytest
import requests
from lakehouse_operator.engines.arrow import commit_retry_cause
from pyiceberg.exceptions import (
    BadRequestError,
    CommitFailedException,
    CommitStateUnknownException,
    ServiceUnavailableError,
)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (CommitFailedException("branch main has changed"), "conflict"),
        (requests.ConnectionError("connection refused"), "catalog-unavailable"),
        (requests.ReadTimeout("read timed out"), "catalog-unavailable"),
        (CommitStateUnknownException("500 on commit"), "catalog-unavailable"),
        (ServiceUnavailableError("503"), "catalog-unavailable"),
        (OSError("When uploading part: connection refused"), "storage-unavailable"),
        (BadRequestError("invalid schema"), None),
        (ValueError("not retried by cause"), None),
    ],
)
def test_each_failed_commit_has_its_cause(error: BaseException, cause: str | None) -> None:
    assert commit_retry_cause(error) == cause
