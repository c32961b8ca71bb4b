"""A bronze table's snapshots, which of them are live, and rolling the table back to one of them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from lakehouse.bronze.writer import RUN_ID_PROPERTY, SEPARATOR, UPLOAD_ID_PROPERTY
from lakehouse.catalog.connect import rest_catalog
from lakehouse.settings import CatalogSettings, S3Settings
from lakehouse_cli import render
from lakehouse_cli.exits import EXIT_OK
from lakehouse_cli.recovery import RecoveryError


@dataclass(frozen=True)
class SnapshotLine:
    snapshot_id: int
    parent_id: int | None
    committed_ms: int
    operation: str | None
    added: int | None
    total: int | None
    run: str | None  # a group commit's runs and uploads are comma-separated (lakehouse.bronze.writer)
    upload: str | None
    live: bool  # in the current snapshot's ancestry: its rows are in the table now


def live_snapshot_ids(table: Table) -> list[int]:
    """The current snapshot and its ancestors, newest first: the commits whose rows the table holds now."""
    return [s.snapshot_id for s in ancestors_of(table.current_snapshot(), table.metadata)]


def undone_by_rollback(table: Table, target: int) -> list[int]:
    """The live snapshots a rollback to `target` takes out of the table, newest first."""
    live = live_snapshot_ids(table)
    if target not in live:
        raise RecoveryError(
            f"snapshot {target} is not the current snapshot or one of its ancestors; "
            f"`lakehouse snapshots {'.'.join(table.name())}` lists those marked live"
        )
    return live[: live.index(target)]


def snapshot_line(snapshot: Snapshot, live: set[int]) -> SnapshotLine:
    summary = snapshot.summary
    extra = summary.additional_properties if summary else {}
    return SnapshotLine(
        snapshot_id=snapshot.snapshot_id,
        parent_id=snapshot.parent_snapshot_id,
        committed_ms=snapshot.timestamp_ms,
        operation=summary.operation.value if summary else None,
        added=int(extra["added-records"]) if "added-records" in extra else None,
        total=int(extra["total-records"]) if "total-records" in extra else None,
        run=extra.get(RUN_ID_PROPERTY),
        upload=extra.get(UPLOAD_ID_PROPERTY),
        live=snapshot.snapshot_id in live,
    )


def history(table: Table) -> list[SnapshotLine]:
    """Every snapshot of the table, oldest first."""
    live = set(live_snapshot_ids(table))
    return [snapshot_line(s, live) for s in sorted(table.snapshots(), key=lambda s: s.timestamp_ms)]


def live_snapshot_of_upload(table: Table, upload_id: str) -> int | None:
    """A live snapshot that holds this upload's rows, if any."""
    live = (line for line in history(table) if line.live)
    return next((line.snapshot_id for line in live if upload_id in (line.upload or "").split(SEPARATOR)), None)


def connect() -> Catalog:
    return rest_catalog(CatalogSettings(), S3Settings())


def load(catalog: Catalog, name: str) -> Table | None:
    if "." not in name:
        raise RecoveryError(f"name the table as namespace.table, not {name!r}")
    try:
        return catalog.load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None


def _existing(catalog: Catalog, name: str) -> Table:
    table = load(catalog, name)
    if table is None:
        raise RecoveryError(f"table {name} does not exist; `lakehouse tables` lists them")
    return table


def _print(lines: list[SnapshotLine], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(line) for line in lines], indent=2))
        return
    rows = [
        (
            line.snapshot_id,
            "yes" if line.live else "no",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(line.committed_ms / 1000)),
            line.operation,
            line.added,
            line.total,
            line.run,
            line.upload,
        )
        for line in lines
    ]
    print(render.table(["snapshot", "live", "committed", "operation", "added", "total", "run", "upload"], rows))


def cmd_snapshots(_: Any, args: argparse.Namespace) -> int:
    lines = history(_existing(connect(), args.table))
    _print(lines[-args.limit :] if args.limit else lines, args.json)
    return EXIT_OK


def cmd_rollback(_: Any, args: argparse.Namespace) -> int:
    table = _existing(connect(), args.table)
    undone = set(undone_by_rollback(table, args.to_snapshot))
    verb = "would take" if args.dry_run else "takes"
    print(f"rolling {args.table} back to snapshot {args.to_snapshot} {verb} these commits out:", file=sys.stderr)
    _print([line for line in history(table) if line.snapshot_id in undone], args.json)
    if not undone:
        print(f"{args.table} is at snapshot {args.to_snapshot} already; nothing to do", file=sys.stderr)
    elif not args.dry_run:
        # Only the current-snapshot pointer moves, in one catalog commit whose requirement is the current
        # snapshot we read: a commit that landed meanwhile makes it fail instead of being undone unseen. The undone
        # snapshots stay in the history (not live) with their files until snapshots are expired.
        try:
            table.manage_snapshots().rollback_to_snapshot(args.to_snapshot).commit()
        except CommitFailedException as error:
            raise RecoveryError(
                f"{args.table} changed while rolling back ({error}); nothing was rolled back: "
                "check that no run is in flight, look again with `lakehouse snapshots`, and retry"
            ) from error
        print(f"{args.table} is at snapshot {args.to_snapshot}", file=sys.stderr)
    return EXIT_OK
