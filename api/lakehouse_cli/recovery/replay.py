"""Replaying finished runs: each as a new run of the same spec, named after it, never twice, and never while the
upload's rows are live in its table."""

from __future__ import annotations

import argparse
import functools
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pyiceberg.catalog import Catalog

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import UPLOAD_ID_MAX_LENGTH, IngestionRunSpec, ingestion_run
from lakehouse.k8s.objects import get_custom_object
from lakehouse_cli import render
from lakehouse_cli.exits import EXIT_OK, EXIT_RUN_FAILED, EXIT_TIMEOUT
from lakehouse_cli.recovery import RecoveryError
from lakehouse_cli.recovery.history import connect, live_snapshot_of_upload, load

REPLAY_OF_LABEL = f"{GROUP}/replay-of"  # the run a replay was made from
_REPLAY_NAME = re.compile(r"^(?P<base>.+)-r(?P<number>[0-9]+)$")


def replay_name(run_name: str, replay_of: str | None) -> str:
    """The replay of `U` is `U-r1`, the replay of a replay `U-rN` is `U-r(N+1)`: one name per step, so running
    the same replay twice collides (409) instead of ingesting the upload twice."""
    match = _REPLAY_NAME.match(run_name) if replay_of else None
    base, number = (match["base"], int(match["number"]) + 1) if match else (run_name, 1)
    suffix = f"-r{number}"
    return base[: UPLOAD_ID_MAX_LENGTH - len(suffix)].rstrip("-") + suffix


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


def failed_runs(runs: list[dict[str, Any]], dataset: str | None, reason: str | None) -> list[dict[str, Any]]:
    """The Failed runs that no run replays yet, of the dataset and reason when given."""
    replayed = {(r["metadata"].get("labels") or {}).get(REPLAY_OF_LABEL) for r in runs}
    return [
        run
        for run in runs
        if (run.get("status") or {}).get("phase") == Phase.FAILED.value
        and run["metadata"]["name"] not in replayed
        and (dataset is None or run["spec"]["dataset"] == dataset)
        and (reason is None or failure_reason(run) == reason)
    ]


def run_table(spec: IngestionRunSpec, contracts: ContractRegistry) -> str:
    contract = contracts.get(spec.dataset)
    target = spec.target
    namespace = (target.namespace if target else None) or contract.bronze.namespace
    return f"{namespace}.{(target.table if target else None) or contract.bronze.table}"


def _check_replayable(run: dict[str, Any], catalog: Callable[[], Catalog], contracts: ContractRegistry) -> None:
    name, phase = run["metadata"]["name"], (run.get("status") or {}).get("phase")
    if phase not in {Phase.SUCCEEDED.value, Phase.FAILED.value}:
        raise RecoveryError(f"run {name} is {phase or 'new'}, not finished; wait for it to end")
    spec = IngestionRunSpec.from_body(run)
    # The table the run itself wrote or would write: its status says, else the contract it pinned at validation
    # (a Dataset may have moved the dataset's table since, or exist only in the cluster), else the contracts.
    status = run.get("status") or {}
    if status.get("table"):
        table_name = status["table"]
    elif status.get("contract"):
        pinned = DatasetContract.model_validate(status["contract"])
        table_name = run_table(spec, ContractRegistry({pinned.name: pinned}))
    else:
        table_name = run_table(spec, contracts)
    table = load(catalog(), table_name)
    # A Succeeded run's commit is live unless rolled back; a Failed run can have one too, when it failed after its
    # commit (PostgreSQL down while it recorded the result, for example).
    snapshot = live_snapshot_of_upload(table, spec.upload_id) if table is not None else None
    if snapshot is not None:
        raise RecoveryError(
            f"upload {spec.upload_id} of run {name} is in {table_name} already (snapshot {snapshot}); "
            "a replay would add its rows a second time (roll the table back first, or pass --force)"
        )


def _kubernetes() -> client.CustomObjectsApi:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def cmd_replay(_: Any, args: argparse.Namespace) -> int:
    if bool(args.runs) == args.failed:
        raise RecoveryError("name the runs to replay, or pass --failed (not both)")
    api = _kubernetes()
    if args.failed:
        listed = api.list_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL)["items"]
        runs = failed_runs(listed, args.dataset, args.reason)
    else:
        runs = [api.get_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, n) for n in args.runs]
    catalog = functools.cache(connect)  # connected only when a run needs checking
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
    """Waits until every replay ended (at most --timeout), then shows them; exit 1 when one failed."""
    deadline = time.monotonic() + args.timeout
    ended: dict[str, dict[str, Any]] = {}
    while len(ended) < len(names) and time.monotonic() < deadline:
        for name in set(names) - set(ended):
            run = api.get_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, name)
            if Phase((run.get("status") or {}).get("phase") or Phase.PENDING).is_terminal:
                ended[name] = run
        if len(ended) < len(names):
            time.sleep(1.0)
    rows = []
    for name in names:
        status = ended.get(name, {}).get("status") or {}
        reason = failure_reason(ended[name]) if name in ended else None
        rows.append((name, status.get("phase", "not ended"), (status.get("counts") or {}).get("written"), reason))
    print(render.table(["run", "phase", "rows", "reason"], rows))
    if len(ended) < len(names):
        return EXIT_TIMEOUT
    return EXIT_RUN_FAILED if any(run["status"]["phase"] == Phase.FAILED.value for run in ended.values()) else EXIT_OK
