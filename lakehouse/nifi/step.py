"""The NiFi flow's validation step, run by ExecuteStreamCommand: upload bytes in, a tar out.

    python -m lakehouse.nifi.step --dataset orders --format csv --upload-id <id> --run-uid <uid> [--sha256=<hex>] \
        [--contract-base64=<the run's contract>]

stdin is the uploaded file as NiFi fetched it. stdout is a tar with the step result (`manifest.json`) and, when the file
was readable, `raw.parquet` and (if any row was rejected) `quarantine.parquet`; the flow unpacks it and
PUTs each entry to its presigned URL. The checks are the built-in engine's own code (ingest_bytes), so
both engines write the same rows and the same reasons. A file that cannot be ingested still exits 0,
with the reason in the step result: the run fails with it instead of waiting for a timeout.

No credentials reach this process: it reads stdin and writes stdout only.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry, UnknownDatasetError
from lakehouse.formats import SourceFormat
from lakehouse.ingest.builtin import ingest_bytes
from lakehouse.ingest.errors import InputError
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.nifi.step_result import (
    QUARANTINE_ENTRY,
    RAW_ENTRY,
    RESULT_ENTRY,
    CheckCount,
    StepError,
    StepResult,
)
from lakehouse.storage.s3 import parquet_bytes


def run_step(
    data: bytes,
    dataset: str,
    source_format: str,
    upload_id: str,
    sha256: str | None,
    contracts: ContractRegistry,
    run_uid: str | None = None,
) -> dict[str, bytes]:
    """The tar's entries by name."""
    try:
        contract = contracts.get(dataset)
        files = ingest_bytes(contract, data, source_format, upload_id, f"upload {upload_id}", sha256)  # type: ignore[arg-type]
    except (InputError, UnknownDatasetError) as error:  # this file cannot be ingested: the run fails with the reason
        reason = error.reason if isinstance(error, InputError) else FailureReason.UNKNOWN_DATASET
        step_result = StepResult(
            upload_id=upload_id,
            run_uid=run_uid,
            dataset=dataset,
            bytes_in=len(data),
            error=StepError(reason=reason, message=str(error)),
        )
        return {RESULT_ENTRY: step_result.to_json()}
    result = files.report
    entries = {RAW_ENTRY: parquet_bytes(files.raw)}
    if files.quarantine is not None:
        entries[QUARANTINE_ENTRY] = parquet_bytes(files.quarantine)
    step_result = StepResult(
        upload_id=upload_id,
        run_uid=run_uid,
        dataset=dataset,
        contract_version=contract.version,
        input_rows=result.input_rows,
        valid_rows=result.valid_rows,
        rejected_rows=result.rejected_rows,
        bytes_in=files.report.bytes_in,
        checks=[
            CheckCount(check_name=c.check_name, column=c.column, passed=c.passed, failed=c.failed)
            for c in result.checks
        ],
    )
    entries[RESULT_ENTRY] = step_result.to_json()
    return entries


def write_tar(entries: dict[str, bytes], out: BinaryIO) -> None:
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _contracts(contract_base64: str, directory: Path | None) -> ContractRegistry:
    """The run's own contract when the operator sent it (a Dataset resource's, which NiFi has no copy of), else the
    contract files NiFi has."""
    if contract_base64:
        contract = DatasetContract.model_validate_json(base64.b64decode(contract_base64, validate=True))
        return ContractRegistry({contract.name: contract})
    return ContractRegistry.from_directory(directory) if directory else ContractRegistry.default()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse.nifi.step", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--format", required=True, choices=list(SourceFormat))
    parser.add_argument("--upload-id", required=True)
    parser.add_argument("--run-uid", default=None, help="the IngestionRun's uid, copied into the step result")
    parser.add_argument("--sha256", default="", help="expected sha256 of the upload; empty: not checked")
    parser.add_argument("--contracts-dir", type=Path, default=None, help="default: LAKEHOUSE_CONTRACTS_DIR")
    parser.add_argument(
        "--contract-base64",
        default="",
        help="the run's contract as the operator pinned it (JSON, base64); empty: the one in --contracts-dir",
    )
    args = parser.parse_args(argv)
    data = sys.stdin.buffer.read()
    try:
        contracts = _contracts(args.contract_base64, args.contracts_dir)
        entries = run_step(
            data, args.dataset, args.format, args.upload_id, args.sha256 or None, contracts, args.run_uid
        )
    except Exception as error:  # anything else still ends the run with its reason, not with a timeout
        step_result = StepResult(
            upload_id=args.upload_id,
            run_uid=args.run_uid,
            dataset=args.dataset,
            bytes_in=len(data),
            error=StepError(reason=FailureReason.INGEST_STEP_ERROR, message=f"{type(error).__name__}: {error}"),
        )
        entries = {RESULT_ENTRY: step_result.to_json()}
        print(f"lakehouse.nifi.step: {type(error).__name__}: {error}", file=sys.stderr)
    write_tar(entries, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
