"""Dataset and job names of the platform in OpenLineage, after its naming spec.

- S3 objects (the upload, raw/ and quarantine/): namespace `s3://<bucket>`, name the object key.
- A bronze table: the spec names no Iceberg catalog, so a table is named the way OpenLineage's Spark integration
  names a REST catalog's table in its `symlinks` facet: namespace the catalog's URI (or
  `LAKEHOUSE_LINEAGE_TABLE_NAMESPACE`), name `<namespace>.<table>`. A Spark job that reads the table through the
  same catalog then joins the same lineage graph. The catalog facet says which catalog and warehouse it is.
- The job: `ingest.<dataset>` in the lineage settings' job namespace; each IngestionRun is one of its runs, with a
  run id derived from the IngestionRun's uid, so every retry and every restarted operator reports the same run.
"""

from __future__ import annotations

import uuid

from openlineage.client.naming.dataset import S3

from lakehouse.storage.s3 import S3Location

_RUN_ID_NAMESPACE = uuid.UUID("8d3c2f5e-6a0b-4f7e-9c51-2e4b7a1d0c93")


def lineage_run_id(ingestion_run_uid: str) -> str:
    """The OpenLineage run id of an IngestionRun: the same for all its events, new for a new run (a replay too)."""
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, ingestion_run_uid))


def s3_dataset(uri: str) -> tuple[str, str]:
    location = S3Location.parse(uri)
    naming = S3(bucket_name=location.bucket, object_key=location.key)
    return naming.get_namespace(), naming.get_name()


def table_dataset(table_namespace: str, identifier: str) -> tuple[str, str]:
    return table_namespace.rstrip("/"), identifier


def job_name(dataset: str) -> str:
    return f"ingest.{dataset}"
