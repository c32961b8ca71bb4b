"""The Airflow connections the provider uses unless a task names others."""

LAKEHOUSE_CONN_ID = "lakehouse_default"  # type kubernetes: the cluster of the IngestionRuns
KAFKA_CONN_ID = "lakehouse_kafka"  # type kafka: the platform's events
