"""The DAG run's OpenLineage identity, handed to the IngestionRun so its lineage run names Airflow's as parent.

The Airflow OpenLineage provider emits the task's run; these annotations carry that run (and the DAG run at
the root) onto the IngestionRun, where the operator's OpenLineage events put them in their ParentRunFacet.
Without the OpenLineage provider installed there is nothing to hand over.
"""

from __future__ import annotations

from typing import Any

ANNOTATION_PREFIX = "openlineage.io/"
PARENT_JOB_NAMESPACE = ANNOTATION_PREFIX + "parent-job-namespace"
PARENT_JOB_NAME = ANNOTATION_PREFIX + "parent-job-name"
PARENT_RUN_ID = ANNOTATION_PREFIX + "parent-run-id"
ROOT_JOB_NAMESPACE = ANNOTATION_PREFIX + "root-job-namespace"
ROOT_JOB_NAME = ANNOTATION_PREFIX + "root-job-name"
ROOT_RUN_ID = ANNOTATION_PREFIX + "root-run-id"


def parent_annotations(task_instance: Any) -> dict[str, str]:
    """The task's OpenLineage job and run, and its DAG run's, as annotations (empty without the provider)."""
    try:
        from airflow.providers.openlineage.plugins import macros
    except ImportError:
        return {}
    values = {
        PARENT_JOB_NAMESPACE: macros.lineage_job_namespace(),
        PARENT_JOB_NAME: macros.lineage_job_name(task_instance),
        PARENT_RUN_ID: macros.lineage_run_id(task_instance),
        ROOT_JOB_NAMESPACE: macros.lineage_root_job_namespace(task_instance),
        ROOT_JOB_NAME: macros.lineage_root_job_name(task_instance),
        ROOT_RUN_ID: macros.lineage_root_run_id(task_instance),
    }
    return {key: str(value) for key, value in values.items() if value}
