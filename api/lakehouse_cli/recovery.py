"""Recovery commands for operators (docs/runbooks/): a bronze table's history, rolling it back, replaying runs.

Unlike the other commands they do not go through the upload API: they act on the Iceberg catalog and the
Kubernetes API directly, with the platform's own environment (ICEBERG_CATALOG_URI, S3_*, AWS_*, KUBECONFIG or
the pod's service account, LAKEHOUSE_NAMESPACE), as the operator does.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from lakehouse.bronze.writer import RUN_ID_PROPERTY, UPLOAD_ID_PROPERTY
from lakehouse.catalog.connect import rest_catalog
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import UPLOAD_ID_MAX_LENGTH, IngestionRunSpec, ingestion_run
from lakehouse.k8s.objects import get_custom_object
from lakehouse.settings import CatalogSettings, S3Settings
from lakehouse_cli import render
from lakehouse_cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED, EXIT_TIMEOUT, EXIT_UNAVAILABLE

REPLAY_OF_LABEL = f"{GROUP}/replay-of"  # the run a replay was made from
_REPLAY_NAME = re.compile(r"^(?P<base>.+)-r(?P<number>[0-9]+)$")


class RecoveryError(Exception):
    """A request that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class SnapshotLine:
    snapshot_id: int
    parent_id: int | None
    committed_ms: int
    operation: str | None
    added: int | None
    total: int | None
    run: str | None
    upload: str | None
    live: bool  # in the current snapshot's ancestry: its rows are in the table now


def add_commands(commands: Any) -> None:
    snapshots = commands.add_parser("snapshots", help="operators: a table's snapshots, the runs that wrote them")
    snapshots.add_argument("table", help="namespace.table")
    snapshots.add_argument("--limit", type=int, default=30, help="the newest N snapshots (0: all)")

    rollback = commands.add_parser("rollback", help="operators: make an earlier snapshot the table's current one")
    rollback.add_argument("table", help="namespace.table")
    rollback.add_argument("--to-snapshot", type=int, required=True, metavar="ID", help="an ancestor of the current")
    rollback.add_argument("--dry-run", action="store_true", help="only list the commits it would undo")

    replay = commands.add_parser("replay", help="operators: run finished runs again, each as a new run")
    replay.add_argument("runs", nargs="*", metavar="RUN", help="run names (default: with --failed, every failed run)")
    replay.add_argument("--failed", action="store_true", help="every Failed run that has no replay yet")
    replay.add_argument("--dataset", help="with --failed: only this dataset's runs")
    replay.add_argument("--reason", help="with --failed: only runs that failed with this reason")
    replay.add_argument("--namespace", default=os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse"))
    replay.add_argument("--force", action="store_true", help="replay even when the upload's rows are in its table")
    replay.add_argument("--wait", action="store_true", help="follow the replays to their end; exit 1 if one fails")
    replay.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait")


# ---- pure logic (unit-tested) -------------------------------------------------------------------------------


def replay_name(run_name: str, replay_of: str | None) -> str:
    """The replay of `U` is `U-r1`, the replay of a replay `U-rN` is `U-r(N+1)`: one name per step, so running
    the same replay twice collides (409) instead of ingesting the upload twice."""
    match = _REPLAY_NAME.match(run_name) if replay_of else None
    base, number = (match["base"], int(match["number"]) + 1) if match else (run_name, 1)
    suffix = f"-r{number}"
    return base[: UPLOAD_ID_MAX_LENGTH - len(suffix)].rstrip("-") + suffix


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
    live = set(live_snapshot_ids(table))
    return [snapshot_line(s, live) for s in sorted(table.snapshots(), key=lambda s: s.timestamp_ms)]


def replay_manifest(run: dict[str, Any]) -> dict[str, Any]:
    """A new run with the same spec (the same upload, engines and target) under the replay's name."""
    metadata = run["metadata"]
    labels = dict(metadata.get("labels") or {})
    labels[REPLAY_OF_LABEL] = metadata["name"]
    manifest = ingestion_run(IngestionRunSpec.from_body(run), labels)
    manifest["metadata"]["name"] = replay_name(metadata["name"], (metadata.get("labels") or {}).get(REPLAY_OF_LABEL))
    return manifest


def failure_reason(run: dict[str, Any]) -> str | None:
    conditions = (run.get("status") or {}).get("conditions") or []
    return next((c["reason"] for c in conditions if c["type"] == ConditionType.FAILED.value), None)


def run_table(spec: IngestionRunSpec, contracts: ContractRegistry) -> str:
    contract = contracts.get(spec.dataset)
    target = spec.target
    namespace = (target.namespace if target else None) or contract.bronze.namespace
    return f"{namespace}.{(target.table if target else None) or contract.bronze.table}"


# ---- commands -----------------------------------------------------------------------------------------------


def _catalog() -> Catalog:
    return rest_catalog(CatalogSettings(), S3Settings())


def _load(catalog: Catalog, name: str) -> Table:
    if "." not in name:
        raise RecoveryError("name the table as namespace.table")
    try:
        return catalog.load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError):
        raise RecoveryError(f"table {name} does not exist") from None


def _print_history(lines: list[SnapshotLine], as_json: bool) -> None:
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
    lines = history(_load(_catalog(), args.table))
    _print_history(lines[-args.limit :] if args.limit else lines, args.json)
    return EXIT_OK


def cmd_rollback(_: Any, args: argparse.Namespace) -> int:
    table = _load(_catalog(), args.table)
    undone = set(undone_by_rollback(table, args.to_snapshot))
    lines = [line for line in history(table) if line.snapshot_id in undone]
    verb = "would take" if args.dry_run else "takes"
    print(f"rolling {args.table} back to snapshot {args.to_snapshot} {verb} these commits out:", file=sys.stderr)
    _print_history(lines, args.json)
    if not undone:
        print(f"{args.table} is at snapshot {args.to_snapshot} already; nothing to do", file=sys.stderr)
    elif not args.dry_run:
        # Only the current-snapshot pointer moves: the undone snapshots stay in the history (not live), so
        # their files are kept until snapshots are expired, and a rollback can itself be undone.
        table.manage_snapshots().rollback_to_snapshot(args.to_snapshot).commit()
        print(f"{args.table} is at snapshot {args.to_snapshot}", file=sys.stderr)
    return EXIT_OK


def _kubernetes() -> client.CustomObjectsApi:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def failed_runs(runs: list[dict[str, Any]], dataset: str | None, reason: str | None) -> list[dict[str, Any]]:
    replayed = {(r["metadata"].get("labels") or {}).get(REPLAY_OF_LABEL) for r in runs}
    return [
        run
        for run in runs
        if (run.get("status") or {}).get("phase") == Phase.FAILED.value
        and run["metadata"]["name"] not in replayed
        and (dataset is None or run["spec"]["dataset"] == dataset)
        and (reason is None or failure_reason(run) == reason)
    ]


def _rows_in_table(catalog: Catalog, table_name: str, upload_id: str) -> int | None:
    """A live snapshot that holds this upload's rows, if any (a run that failed after its commit has one)."""
    try:
        table = catalog.load_table(table_name)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None
    return next((line.snapshot_id for line in history(table) if line.live and line.upload == upload_id), None)


def _check_replayable(run: dict[str, Any], catalog: Callable[[], Catalog], contracts: ContractRegistry) -> None:
    name, phase = run["metadata"]["name"], (run.get("status") or {}).get("phase")
    if phase not in {Phase.SUCCEEDED.value, Phase.FAILED.value}:
        raise RecoveryError(f"run {name} is {phase or 'new'}, not finished; wait for it to end")
    spec = IngestionRunSpec.from_body(run)
    table_name = run_table(spec, contracts)
    snapshot = _rows_in_table(catalog(), table_name, spec.upload_id)
    if snapshot is not None:
        raise RecoveryError(
            f"upload {spec.upload_id} of run {name} is in {table_name} already (snapshot {snapshot}); "
            "a replay would add its rows a second time (roll the table back first, or pass --force)"
        )


def cmd_replay(_: Any, args: argparse.Namespace) -> int:
    if bool(args.runs) == args.failed:
        raise RecoveryError("name the runs to replay, or pass --failed (not both)")
    api = _kubernetes()
    if args.failed:
        listed = api.list_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL)["items"]
        runs = failed_runs(listed, args.dataset, args.reason)
    else:
        runs = [api.get_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, n) for n in args.runs]
    catalog = functools.cache(_catalog)  # connected only when a run needs checking
    contracts = ContractRegistry.default()
    replays, to_create = [], []
    for run in runs:  # every run is checked before any replay is created
        manifest = replay_manifest(run)
        replay = manifest["metadata"]["name"]
        replays.append(replay)
        if get_custom_object(api, GROUP, VERSION, PLURAL, args.namespace, replay) is not None:
            print(f"{run['metadata']['name']} was replayed already, as {replay}", file=sys.stderr)
            continue
        if not args.force:
            _check_replayable(run, catalog, contracts)
        to_create.append((run["metadata"]["name"], manifest))
    for name, manifest in to_create:
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, manifest)
        except ApiException as error:
            if error.status != 409:  # 409: a concurrent replay created it a moment ago
                raise
        print(f"{name} -> {manifest['metadata']['name']} created", file=sys.stderr)
    if not replays:
        print("nothing to replay", file=sys.stderr)
    return _follow(api, args, replays) if args.wait else EXIT_OK


def _follow(api: client.CustomObjectsApi, args: argparse.Namespace, names: list[str]) -> int:
    deadline = time.monotonic() + args.timeout
    ended: dict[str, dict[str, Any]] = {}
    while len(ended) < len(names) and time.monotonic() < deadline:
        for name in set(names) - set(ended):
            run = api.get_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, name)
            if Phase((run.get("status") or {}).get("phase") or Phase.PENDING).is_terminal:
                ended[name] = run
        time.sleep(1.0 if len(ended) < len(names) else 0)
    rows = []
    for name in names:
        status = ended.get(name, {}).get("status") or {}
        counts = status.get("counts") or {}
        reason = failure_reason(ended[name]) if name in ended else None
        rows.append((name, status.get("phase", "not ended"), counts.get("written"), status.get("table"), reason))
    print(render.table(["run", "phase", "rows", "table", "reason"], rows))
    if len(ended) < len(names):
        return EXIT_TIMEOUT
    return EXIT_RUN_FAILED if any(r["status"]["phase"] == Phase.FAILED.value for r in ended.values()) else EXIT_OK


def _guarded(command: Callable[[Any, argparse.Namespace], int]) -> Callable[[Any, argparse.Namespace], int]:
    def run(api_client: Any, args: argparse.Namespace) -> int:
        try:
            return command(api_client, args)
        except (RecoveryError, ValueError) as error:  # ValueError: PyIceberg refusing a snapshot change
            print(f"lakehouse: {error}", file=sys.stderr)
            return EXIT_REFUSED
        except ApiException as error:
            print(f"lakehouse: the Kubernetes API answered {error.status}: {error.reason}", file=sys.stderr)
            return EXIT_REFUSED if error.status and error.status < 500 else EXIT_UNAVAILABLE

    return run


COMMANDS = {"snapshots": _guarded(cmd_snapshots), "rollback": _guarded(cmd_rollback), "replay": _guarded(cmd_replay)}
