"""`lakehouse dataset infer|check`: help for the person writing a dataset contract, on a local file.

Neither talks to the API or writes anything: `infer` prints a contract a sample file fits, `check` runs the
ingest's own reading and validation (lakehouse.ingest) on a file and says what would be valid, what would be
quarantined and why, and whether the run would fail.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from lakehouse_api.uploads import sniff

from lakehouse.contracts.model import CsvDialect, DatasetContract
from lakehouse.contracts.registry import ContractError, ContractRegistry, UnknownDatasetError, parse_contract
from lakehouse.formats import SourceFormat
from lakehouse.ingest.builtin import ingest_source
from lakehouse.ingest.errors import InputError
from lakehouse.ingest.limits import rejecting_checks
from lakehouse.ingest.readers import ROW_NUMBER, CsvReading, FileSource, open_batches
from lakehouse.ingest.validation import REJECT_REASON
from lakehouse.k8s.ingestionrun.spec import DATASET_NAME_MAX_LENGTH
from lakehouse_cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED


def add_commands(commands: Any) -> None:
    dataset = commands.add_parser("dataset", help="write and try a dataset contract on a local file (no API)")
    tools = dataset.add_subparsers(dest="dataset_command", required=True)

    infer = tools.add_parser("infer", help="print a dataset contract inferred from a sample file")
    infer.add_argument("file", type=Path)
    infer.add_argument("--name", help="the dataset's name (default: from the file name)")
    infer.add_argument("--source-system", help="the system the files come from (default: the dataset's name)")
    infer.add_argument("--format", choices=list(SourceFormat), help="default: judged from the file's first bytes")

    check = tools.add_parser("check", help="dry run: what of a file would be valid, quarantined, and why")
    check.add_argument("file", type=Path)
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a dataset of the contracts (LAKEHOUSE_CONTRACTS_DIR, else packaged)")
    source.add_argument("--contract", type=Path, help="a contract file not deployed yet")
    check.add_argument("--format", choices=list(SourceFormat), help="default: judged from the file's first bytes")
    check.add_argument("--show", type=int, default=10, metavar="N", help="print the first N quarantined rows")


def cmd_dataset(_client: Any, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"lakehouse: {args.file} is not a file", file=sys.stderr)
        return EXIT_REFUSED
    try:
        source_format = SourceFormat(args.format) if args.format else _sniffed_format(args.file)
    except (sniff.UnsupportedFormatError, sniff.EmptyFileError) as error:
        print(f"lakehouse: {args.file}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    if args.dataset_command == "infer":
        return _infer(args, source_format)
    return _check(args, source_format)


def _sniffed_format(path: Path) -> SourceFormat:
    with path.open("rb") as stream:
        head = stream.read(sniff.SNIFF_BYTES)
    return sniff.sniff_format(head, complete=len(head) < sniff.SNIFF_BYTES)


# --- infer ----------------------------------------------------------------------------------------------------


def dataset_name(path: Path) -> str:
    """A dataset name made of a file name: flights-2013.csv -> flights_2013."""
    name = re.sub(r"[^a-z0-9]+", "_", path.name.split(".")[0].lower()).strip("_") or "dataset"
    return (f"d_{name}" if name[0].isdigit() else name)[:DATASET_NAME_MAX_LENGTH]


def _infer(args: argparse.Namespace, source_format: SourceFormat) -> int:
    from lakehouse.contracts.infer import guess_delimiter, infer_contract

    name = args.name or dataset_name(args.file)
    source = FileSource(args.file)
    delimiter = ","
    if source_format == SourceFormat.CSV:
        delimiter = guess_delimiter(source.head(2**16).split(b"\n", 1)[0].decode("utf-8-sig", "replace"))
    try:
        contract, rows = infer_contract(
            open_batches(source, source_format, csv=CsvReading(CsvDialect(delimiter=delimiter))),
            name=name,
            source_system=args.source_system or name,
            delimiter=delimiter,
        )
    except InputError as error:
        print(f"lakehouse: {args.file} cannot be read: {error}", file=sys.stderr)
        return EXIT_REFUSED
    document = contract.model_dump(mode="json", exclude_defaults=True)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(f"# A contract inferred by `lakehouse dataset infer` from {args.file.name} ({rows} rows).")
        print("# Review the types, required columns, null markers and the bronze target before you use it.")
        print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120), end="")
    return EXIT_OK


# --- check ----------------------------------------------------------------------------------------------------


class _Discarded:
    """A RowsWriter that keeps nothing but the first rows it is given (the quarantine's sample)."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self.sample: list[dict[str, Any]] = []

    def write(self, table: pa.Table) -> None:
        if len(self.sample) < self._keep:
            self.sample += table.slice(0, self._keep - len(self.sample)).to_pylist()

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _contract(args: argparse.Namespace) -> DatasetContract:
    if args.contract:
        return parse_contract(args.contract.read_text(encoding="utf-8"), str(args.contract))
    return ContractRegistry.default().get(args.dataset)


def _check(args: argparse.Namespace, source_format: SourceFormat) -> int:
    try:
        contract = _contract(args)
    except (ContractError, UnknownDatasetError, OSError) as error:
        print(f"lakehouse: {error}", file=sys.stderr)
        return EXIT_REFUSED
    quarantine = _Discarded(max(args.show, 0))
    try:
        report = ingest_source(
            contract, FileSource(args.file), source_format, "check", str(args.file), None, _Discarded(0), quarantine
        )
    except InputError as error:
        failed = {"file": str(args.file), "dataset": contract.name, "reason": str(error.reason), "message": str(error)}
        _show(args, failed, f"a run of {args.file.name} would fail: {error.reason}: {error}")
        return EXIT_RUN_FAILED
    checks = [vars(c) for c in rejecting_checks(contract, report.checks)]
    result = {
        "file": str(args.file),
        "dataset": contract.name,
        "contractVersion": contract.version,
        "rows": report.input_rows,
        "valid": report.valid_rows,
        "quarantined": report.rejected_rows,
        "failedChecks": checks,
        "quarantineSample": [{"row": row[ROW_NUMBER], "reason": row[REJECT_REASON]} for row in quarantine.sample],
    }
    lines = [
        f"{args.file.name} against the {contract.name} contract (version {contract.version}): "
        f"{report.input_rows} rows, {report.valid_rows} valid, {report.rejected_rows} quarantined",
        *(f"  {c['check_name']} on {c['column'] or 'the row'}: {c['failed']} rows" for c in checks),
        *(f"  row {s['row']}: {s['reason']}" for s in result["quarantineSample"]),
        "nothing was written",
    ]
    _show(args, result, "\n".join(lines))
    return EXIT_OK


def _show(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


COMMANDS = {"dataset": cmd_dataset}
