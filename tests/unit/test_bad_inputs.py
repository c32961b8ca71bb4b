"""The bad-input corpus (tests/data/bad) through the ingest code both engines run, without servers: the
built-in engine's ingest_bytes and NiFi's step each give the outcome the manifest expects. The API's
refusals and the whole path are checked end to end in tests/integration/test_bad_inputs.py."""

from __future__ import annotations

import hashlib

import pytest

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.ingest.builtin import ingest_bytes
from lakehouse.ingest.errors import InputError
from lakehouse.nifi.step import run_step
from lakehouse.nifi.step_result import RESULT_ENTRY, StepResult
from tests.data.bad.generate import BUILDERS, Case, manifest

CONTRACTS = ContractRegistry.default()
CORPUS = manifest()
REACHES_THE_OPERATOR = [case for case in CORPUS if case.expect.refused is None]


def test_the_corpus_covers_every_kind_of_outcome() -> None:
    assert len(CORPUS) >= 30 and len({c.name for c in CORPUS}) == len(CORPUS)
    assert all(any(getattr(c.expect, kind) for c in CORPUS) for kind in ("refused", "succeeded", "failed"))


@pytest.mark.parametrize("name", ["quoted-newlines", "formula-injection", "parquet-footer-claims-more-rows"])
def test_the_files_are_the_same_every_time(name: str) -> None:
    assert BUILDERS[name]() == BUILDERS[name]()


@pytest.mark.parametrize("case", REACHES_THE_OPERATOR, ids=lambda case: case.name)
def test_each_file_the_operator_gets_has_its_expected_outcome_in_both_engines(case: Case) -> None:
    contract = CONTRACTS.get(case.dataset)
    data = case.data()
    sha256 = "0" * 64 if case.wrong_sha256 else hashlib.sha256(data).hexdigest()
    step = StepResult.from_json(run_step(data, case.dataset, case.format, "u-1", sha256, CONTRACTS)[RESULT_ENTRY])

    if failed := case.expect.failed:
        with pytest.raises(InputError) as error:
            ingest_bytes(contract, data, case.format, "u-1", "s3://uploads/u-1", sha256)  # type: ignore[arg-type]
        assert (error.value.reason, failed.message in str(error.value)) == (failed.reason, True), str(error.value)
        assert step.error is not None and step.error.reason == failed.reason and failed.message in step.error.message
        return

    expected = case.expect.succeeded
    assert expected is not None
    files = ingest_bytes(contract, data, case.format, "u-1", "s3://uploads/u-1", sha256)  # type: ignore[arg-type]
    rejected = files.quarantine.to_pylist() if files.quarantine is not None else []
    counts = (files.report.input_rows, files.raw.num_rows, len(rejected))
    assert counts == (expected.input, expected.valid, expected.rejected)
    assert step.error is None and (step.input_rows, step.valid_rows, step.rejected_rows) == counts
    reasons = {row["_source_row"]: row["_reject_reason"] for row in rejected}
    assert reasons.keys() == expected.quarantine.keys()
    for row, fragment in expected.quarantine.items():
        assert fragment in reasons[row]
    if expected.bronze:  # raw/ holds exactly the rows the transform appends to bronze
        assert sorted(str(v) for v in files.raw.column(expected.bronze.column).to_pylist()) == expected.bronze.values
