"""`lakehouse`: upload files and follow runs and tables through the Datasource API.

Exit codes: 0 success; 1 the run failed; 2 the API refused the request; 3 the API is unreachable
or unavailable; 4 gave up waiting.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse_cli import dataset_tools, maintenance, recovery, render
from lakehouse_cli.client import ApiError, LakehouseClient
from lakehouse_cli.config import ConfigError, resolve
from lakehouse_cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED, EXIT_TIMEOUT, EXIT_UNAVAILABLE
from lakehouse_cli.progress import ProgressBar

TERMINAL_PHASES = {phase.value for phase in Phase if phase.is_terminal}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakehouse", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="API URL (env LAKEHOUSE_API_URL, config file 'url')")
    parser.add_argument("--api-key", help="API key (env LAKEHOUSE_API_KEY, config file 'api_key'); prefer the env")
    parser.add_argument("--config", help="config file (env LAKEHOUSE_CONFIG; default ~/.config/lakehouse/config.toml)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of text")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {importlib.metadata.version('lakehouse-ingest')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    upload = commands.add_parser("upload", help="upload a file and create its ingestion run")
    upload.add_argument("file", type=Path)
    upload.add_argument("--dataset", required=True)
    upload.add_argument("--ingest-engine", choices=list(IngestEngineName))
    upload.add_argument("--transform-engine", choices=list(TransformEngineName))
    upload.add_argument("--idempotency-key", help="reuse to make a retried upload return the first run")
    upload.add_argument("--wait", action="store_true", help="follow the run to its end; exit 1 if it fails")
    upload.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait")

    runs = commands.add_parser("runs", help="list uploads and their runs, newest first")
    runs.add_argument("--dataset")
    runs.add_argument("--phase", choices=list(Phase))
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--watch", action="store_true", help="refresh until interrupted")
    runs.add_argument("--interval", type=float, default=2.0)

    run = commands.add_parser("run", help="one upload: phase, counts, conditions, events")
    run.add_argument("upload_id")

    commands.add_parser("datasets", help="dataset contracts")
    commands.add_parser("tables", help="tables of the catalog")
    table = commands.add_parser("table", help="a table's schema, row count and snapshots")
    table.add_argument("name", help="namespace.table")
    table.add_argument("--snapshots", action="store_true", help="list every snapshot")
    table.add_argument("--as-of", type=int, metavar="SNAPSHOT", help="describe the table as of this snapshot")
    table.add_argument("--rows", type=int, metavar="N", help="also show the first N rows")
    lineage = commands.add_parser("lineage", help="which uploads and runs produced a table's snapshots")
    lineage.add_argument("name", help="namespace.table")
    recovery.add_commands(commands)
    dataset_tools.add_commands(commands)
    maintenance.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = resolve(args.url, args.api_key, args.config)
    except ConfigError as error:
        print(f"lakehouse: {error}", file=sys.stderr)
        return EXIT_REFUSED
    client = LakehouseClient(config.url, config.api_key)
    try:
        return COMMANDS[args.command](client, args)
    except ApiError as error:
        print(f"lakehouse: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE if error.status >= 500 else EXIT_REFUSED
    except httpx.TransportError as error:
        print(f"lakehouse: cannot reach the API at {config.url}: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def cmd_upload(client: LakehouseClient, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"lakehouse: {args.file} is not a file", file=sys.stderr)
        return EXIT_REFUSED
    bar = ProgressBar(f"uploading {args.file.name}")
    accepted = client.upload(
        args.file,
        args.dataset,
        ingest_engine=args.ingest_engine,
        transform_engine=args.transform_engine,
        idempotency_key=args.idempotency_key,
        progress=bar,
    )
    bar.finish(accepted["sizeBytes"])
    replayed = " (an earlier upload with this Idempotency-Key)" if accepted.get("replayed") else ""
    if not args.wait:
        _print(args, accepted, f"upload {accepted['uploadId']} accepted{replayed}; status: {accepted['statusUrl']}")
        return EXIT_OK
    print(f"upload {accepted['uploadId']} accepted{replayed}; following its run", file=sys.stderr)
    return follow(client, args, accepted["uploadId"])


def follow(client: LakehouseClient, args: argparse.Namespace, upload_id: str) -> int:
    """Shows each phase as the run reaches it, until it ends."""
    deadline = time.monotonic() + args.timeout
    shown: str | None = None
    while time.monotonic() < deadline:
        upload = client.get(f"/api/v1/uploads/{upload_id}")
        phase = upload.get("phase") or "Accepted"
        if phase != shown:
            print(f"  {time.strftime('%H:%M:%S')} {phase}", file=sys.stderr, flush=True)
            shown = phase
        if phase in TERMINAL_PHASES:
            return _finished(args, upload)
        time.sleep(1.0)
    print(f"lakehouse: {upload_id} still {shown} after {args.timeout:.0f}s", file=sys.stderr)
    return EXIT_TIMEOUT


def _finished(args: argparse.Namespace, upload: dict[str, Any]) -> int:
    if upload["phase"] == "Failed":
        print(f"lakehouse: run {upload['uploadId']} failed: {render.failure_reason(upload)}", file=sys.stderr)
        if args.json:
            print(json.dumps(upload, indent=2))
        return EXIT_RUN_FAILED
    counts = upload.get("counts") or {}
    _print(
        args,
        upload,
        f"Succeeded: {counts.get('written', 0)} rows in {upload.get('table')} (snapshot {upload.get('snapshotId')}), "
        f"{counts.get('rejected', 0)} rejected",
    )
    return EXIT_OK


def cmd_runs(client: LakehouseClient, args: argparse.Namespace) -> int:
    while True:
        page = client.get("/api/v1/uploads", dataset=args.dataset, phase=args.phase, limit=args.limit)
        text = render.runs_table(page["data"]) + f"\n{len(page['data'])} of {page['count']}"
        if args.watch and sys.stdout.isatty():
            print("\033[2J\033[H", end="")  # clear the screen, like `watch`
        if args.watch:
            text = f"{time.strftime('%H:%M:%S')}\n{text}"
        _print(args, page, text)
        if not args.watch:
            return EXIT_OK
        sys.stdout.flush()
        time.sleep(args.interval)


def cmd_run(client: LakehouseClient, args: argparse.Namespace) -> int:
    upload = client.get(f"/api/v1/uploads/{args.upload_id}")
    _print(args, upload, render.run_details(upload))
    return EXIT_RUN_FAILED if upload.get("phase") == "Failed" else EXIT_OK


def cmd_datasets(client: LakehouseClient, args: argparse.Namespace) -> int:
    page = client.get("/api/v1/datasets")
    rows = [(d["name"], d["version"], d["bronze"]["table"], len(d["columns"]), d["description"]) for d in page["data"]]
    _print(args, page, render.table(["dataset", "version", "table", "columns", "description"], rows))
    return EXIT_OK


def cmd_tables(client: LakehouseClient, args: argparse.Namespace) -> int:
    page = client.get("/api/v1/tables")
    _print(args, page, render.table(["table"], [(t["identifier"],) for t in page["data"]]))
    return EXIT_OK


def _table_path(name: str) -> str | None:
    """`/api/v1/tables/<namespace>/<table>` for `namespace.table`; None (and a message) for anything else."""
    namespace, _, table = name.rpartition(".")
    if not namespace:
        print("lakehouse: name the table as namespace.table", file=sys.stderr)
        return None
    return f"/api/v1/tables/{namespace}/{table}"


def cmd_table(client: LakehouseClient, args: argparse.Namespace) -> int:
    if (path := _table_path(args.name)) is None:
        return EXIT_REFUSED
    info = client.get(path, snapshots=args.snapshots, asOf=args.as_of)
    text = render.table_details(info)
    if args.rows:
        rows = client.get(f"{path}/rows", limit=args.rows, asOf=args.as_of)
        info["rows"] = rows
        text += "\n\n" + render.table(rows["columns"], [[r.get(c) for c in rows["columns"]] for r in rows["data"]])
    _print(args, info, text)
    return EXIT_OK


def cmd_lineage(client: LakehouseClient, args: argparse.Namespace) -> int:
    if (path := _table_path(args.name)) is None:
        return EXIT_REFUSED
    page = client.get(f"{path}/lineage")
    _print(args, page, render.lineage_table(page["data"]))
    return EXIT_OK


COMMANDS = {
    "upload": cmd_upload,
    "runs": cmd_runs,
    "run": cmd_run,
    "datasets": cmd_datasets,
    "tables": cmd_tables,
    "table": cmd_table,
    "lineage": cmd_lineage,
    **recovery.COMMANDS,
    **dataset_tools.COMMANDS,
    **maintenance.COMMANDS,
}

if __name__ == "__main__":
    sys.exit(main())
