"""Recovery commands for operators (docs/runbooks/): a bronze table's history, rolling it back, replaying runs.

Unlike the other commands they do not go through the upload API: they act on the Iceberg catalog and the
Kubernetes API directly, with the platform's own environment (ICEBERG_CATALOG_URI, S3_*, AWS_*, KUBECONFIG or
the pod's service account, LAKEHOUSE_NAMESPACE), as the operator does. Their modules (`history`, `replay`)
are imported when one of them runs, so the other commands do not pay for loading PyIceberg and the
Kubernetes client.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from lakehouse_cli.exits import EXIT_REFUSED, EXIT_UNAVAILABLE

Command = Callable[[Any, argparse.Namespace], int]


class RecoveryError(Exception):
    """A request that cannot be done as asked; the message says why and what to do."""


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


def _command(module: str, function: str) -> Command:
    """The command, loaded when it runs; refusals and Kubernetes API errors become a message and an exit code."""

    def run(api_client: Any, args: argparse.Namespace) -> int:
        from kubernetes.client.exceptions import ApiException

        command: Command = getattr(importlib.import_module(f"{__name__}.{module}"), function)
        try:
            return command(api_client, args)
        except (RecoveryError, ValueError) as error:  # ValueError: PyIceberg refusing a snapshot change
            print(f"lakehouse: {error}", file=sys.stderr)
            return EXIT_REFUSED
        except ApiException as error:
            print(f"lakehouse: the Kubernetes API answered {error.status}: {error.reason}", file=sys.stderr)
            return EXIT_REFUSED if error.status and error.status < 500 else EXIT_UNAVAILABLE

    return run


COMMANDS = {
    "snapshots": _command("history", "cmd_snapshots"),
    "rollback": _command("history", "cmd_rollback"),
    "replay": _command("replay", "cmd_replay"),
}
