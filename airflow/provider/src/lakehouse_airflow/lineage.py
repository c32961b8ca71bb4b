"""The task's OpenLineage identity, handed to the IngestionRun so its lineage run names Airflow's as parent.

The Airflow OpenLineage provider emits the task's run; the annotation the operator reads
(lakehouse.k8s.ingestionrun.lineage, the one home of its name and format) carries that run onto the
IngestionRun, where the operator's OpenLineage events put it in their ParentRunFacet. Without the OpenLineage
provider installed there is nothing to hand over.
"""

from __future__ import annotations

from typing import Any

from lakehouse.k8s.ingestionrun.lineage import PARENT_ANNOTATION, ParentRun


def parent_annotations(task_instance: Any) -> dict[str, str]:
    """The task's OpenLineage job and run as the IngestionRun's parent annotation (empty without the provider)."""
    try:
        from airflow.providers.openlineage.plugins import macros
    except ImportError:
        return {}
    parent = ParentRun(
        job_namespace=str(macros.lineage_job_namespace()),
        job_name=str(macros.lineage_job_name(task_instance)),
        run_id=str(macros.lineage_run_id(task_instance)),
    )
    return {PARENT_ANNOTATION: parent.annotation}
