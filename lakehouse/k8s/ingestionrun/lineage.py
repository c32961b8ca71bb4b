"""The optional parent of an IngestionRun in OpenLineage: the run of whatever scheduled it (an Airflow task).

It is an annotation, not a spec field: the spec is immutable and checked by the CRD, while a scheduler that adopts
a run made by the upload API can still name itself as its parent. The value is what the Airflow OpenLineage
provider's `lineage_parent_id` macro renders, `{job namespace}/{job name}/{run id}`; the operator reads it at every
lineage event of the run, so it shows in the events that follow the moment it was set.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lakehouse.k8s.ingestionrun import GROUP

PARENT_ANNOTATION = f"{GROUP}/openlineage-parent"


@dataclass(frozen=True)
class ParentRun:
    job_namespace: str
    job_name: str
    run_id: str

    @property
    def annotation(self) -> str:
        return f"{self.job_namespace}/{self.job_name}/{self.run_id}"


def parse_parent(value: str) -> ParentRun:
    """`namespace/name/runId`; the namespace is the first segment and the run id (a UUID) the last, so a job name
    may hold slashes. Raises ValueError for anything else."""
    namespace, _, rest = value.strip().partition("/")
    name, _, run_id = rest.rpartition("/")
    if not namespace or not name:
        raise ValueError(f"{PARENT_ANNOTATION} must be 'namespace/job name/run id', not {value!r}")
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise ValueError(f"{PARENT_ANNOTATION}: the run id {run_id!r} is not a UUID") from None
    return ParentRun(namespace, name, run_id)
