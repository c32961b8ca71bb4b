"""`lakehouse maintenance run DATASET`: one maintenance run of a dataset's bronze table, now (docs/runbooks/).

Like the recovery commands it acts on the catalog, S3 and the platform database directly, with the platform's
own environment (ICEBERG_CATALOG_URI, S3_*, AWS_*, DATABASE_URL), as the operator does, under the same lock per
table: while the operator's scheduled run holds it, this one is refused and changes nothing. The dataset's contract
is its Dataset resource in `--namespace` when a cluster is configured (KUBECONFIG, or in a pod), as the operator
reads it, else its contract file. The maintenance
modules are imported when the command runs, so the other commands do not pay for loading PyIceberg.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

from lakehouse_cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE


def add_commands(commands: Any) -> None:
    maintenance = commands.add_parser("maintenance", help="operators: keep a bronze table healthy")
    actions = maintenance.add_subparsers(dest="action", required=True)
    run = actions.add_parser(
        "run", help="compact small files, expire old snapshots and remove orphan files of a dataset's table, now"
    )
    run.add_argument("dataset")
    run.add_argument(
        "--namespace",
        default=os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse"),
        help="whose Dataset resources define the datasets (when a cluster is configured; else the contract files)",
    )


def cmd_maintenance(_: Any, args: argparse.Namespace) -> int:
    from lakehouse.catalog.connect import rest_catalog
    from lakehouse.contracts.cluster import contracts_of
    from lakehouse.contracts.registry import UnknownDatasetError
    from lakehouse.db.maintenance_log import MaintenanceLog
    from lakehouse.maintenance.runner import LOCKED, maintain
    from lakehouse.settings import CatalogSettings, DatabaseSettings, S3Settings

    try:
        contract = contracts_of(args.namespace).get(args.dataset)
    except UnknownDatasetError as error:
        print(f"lakehouse: {error}", file=sys.stderr)
        return EXIT_REFUSED
    s3 = S3Settings()
    maintenance_log = MaintenanceLog(DatabaseSettings().url.get_secret_value())
    report = maintain(rest_catalog(CatalogSettings(), s3), s3.client(), maintenance_log, contract, "cli")
    if args.json:
        print(json.dumps(asdict(report) | {"summary": report.summary()}, indent=2, default=str))
    else:
        print(report.summary())
    if report.skipped == LOCKED:
        print("lakehouse: try again once the running maintenance ends", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_UNAVAILABLE if report.failures else EXIT_OK


COMMANDS = {"maintenance": cmd_maintenance}
