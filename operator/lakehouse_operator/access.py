"""What a run may touch: it reads only its own upload in the install's uploads bucket, and writes only its
dataset contract's bronze table (or a table of a namespace the install names a sandbox).

The CRD already refuses what it can tell from the run alone (the shape of the source URI, its dataset and
upload id segments, the target's name shape, in CEL); the bucket and the contract's table are the
install's, so they are checked here, before the run reads or writes anything. A run outside these
bounds fails at once with SourceNotAllowed or TargetNotAllowed: no retry can make it allowed.
"""

from __future__ import annotations

import re
from typing import Any

from lakehouse.contracts.model import DatasetContract
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.k8s.ingestionrun.spec import SOURCE_URI_PATTERN, is_upload_of
from lakehouse_operator.engines.base import RunRejectedError
from lakehouse_operator.settings import OperatorSettings


def target_of(spec: dict[str, Any], contract: DatasetContract) -> tuple[str, str]:
    """The run's (namespace, table): the spec's target, each part defaulting to the contract's bronze table."""
    target = spec.get("target") or {}
    return target.get("namespace", contract.bronze.namespace), target.get("table", contract.bronze.table)


def check_source(spec: dict[str, Any], settings: OperatorSettings) -> None:
    uri, dataset, upload_id = spec["source"]["uri"], spec["dataset"], spec["uploadId"]
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    # The shape is checked again, not trusted from the CRD: an older CRD may be installed.
    if re.fullmatch(SOURCE_URI_PATTERN, uri) is None or not is_upload_of(uri, dataset, upload_id):
        why = "not an upload of this run"
    elif bucket != settings.uploads_bucket:
        why = f"bucket {bucket} is not the uploads bucket"
    else:
        return
    raise RunRejectedError(
        FailureReason.SOURCE_NOT_ALLOWED,
        f"{uri} is not allowed ({why}): this run may read only "
        f"s3://{settings.uploads_bucket}/{dataset}/<date>/{upload_id}/<file>; upload the file through the API",
    )


def check_target(spec: dict[str, Any], contract: DatasetContract, settings: OperatorSettings) -> None:
    namespace, table = target_of(spec, contract)
    if (namespace, table) == (contract.bronze.namespace, contract.bronze.table):
        return
    if settings.is_sandbox(namespace):
        return
    raise RunRejectedError(
        FailureReason.TARGET_NOT_ALLOWED,
        f"a run of dataset {contract.name} writes only {contract.bronze.identifier}, not {namespace}.{table}; "
        "leave spec.target out (or name a table in a sandbox namespace of this install)",
    )
