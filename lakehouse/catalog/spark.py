"""Spark configuration for the Iceberg REST catalog, shared by the Spark job and its SparkApplication.

Only endpoints and switches: no credential ever goes into a Spark conf (it would show in the Spark UI
and in the SparkApplication object). S3 keys reach S3FileIO and S3A through the AWS SDKs' own
environment lookup (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) in every driver and executor.
"""

from __future__ import annotations

from lakehouse.settings import CatalogSettings, S3Settings

SPARK_CATALOG = "lakehouse"  # the Spark-side name; tables are lakehouse.<namespace>.<table>


def iceberg_spark_conf(catalog: CatalogSettings, s3: S3Settings) -> dict[str, str]:
    prefix = f"spark.sql.catalog.{SPARK_CATALOG}"
    path_style = str(s3.path_style).lower()
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "rest",
        f"{prefix}.uri": catalog.uri,
        f"{prefix}.warehouse": catalog.warehouse,
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.s3.path-style-access": path_style,
        f"{prefix}.client.region": s3.region,
        # Plain Parquet files (raw/, quarantine/) go through Hadoop's S3A.
        "spark.hadoop.fs.s3a.path.style.access": path_style,
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        # raw/ holds naive UTC timestamps: read them as TIMESTAMP_NTZ, Iceberg's `timestamp`.
        "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    }
    if s3.endpoint_url:
        conf[f"{prefix}.s3.endpoint"] = s3.endpoint_url
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint_url
    return conf
