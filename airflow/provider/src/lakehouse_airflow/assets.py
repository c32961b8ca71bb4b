"""The platform's Kafka topics and bronze tables as Airflow assets.

`file-uploaded` and `bronze-layer-complete` are assets with an AssetWatcher: the Kafka provider's message-queue
trigger runs in the triggerer and records an asset event per message of this install's namespace, whose extra
holds the CloudEvent's data under `payload`. A bronze table is an asset a DAG names as an outlet.
"""

from __future__ import annotations

from airflow.providers.apache.kafka.triggers.msg_queue import KafkaMessageQueueTrigger
from airflow.sdk import Asset, AssetAlias, AssetWatcher

from lakehouse_airflow.connections import KAFKA_CONN_ID

FILE_UPLOADED_TOPIC = (
    "file-uploaded"  # lakehouse.events.FILE_UPLOADED (the platform's events module needs Kafka's client)
)
BRONZE_LAYER_COMPLETE_TOPIC = "bronze-layer-complete"
# The bronze tables a DAG run wrote to; each event on it adds the table's own asset (bronze_table).
BRONZE_TABLES = AssetAlias(name="lakehouse-bronze-tables")


def topic_asset(topic: str, namespace: str, kafka_conn_id: str = KAFKA_CONN_ID, poll_interval: float = 1.0) -> Asset:
    """The asset of one of the platform's topics, with an event per message about a run in `namespace`."""
    trigger = KafkaMessageQueueTrigger(
        topics=[topic],
        kafka_config_id=kafka_conn_id,
        apply_function="lakehouse_airflow.messages.event_data",
        apply_function_kwargs={"namespace": namespace},
        poll_interval=poll_interval,
    )
    return Asset(
        name=f"lakehouse-{topic}-{namespace}",
        uri=f"lakehouse://{namespace}/events/{topic}",
        group="lakehouse-events",
        watchers=[AssetWatcher(name=f"lakehouse-{topic}-{namespace}", trigger=trigger)],
    )


def bronze_table(table: str) -> Asset:
    """A bronze Iceberg table (`namespace.table`, as a run's status names it)."""
    namespace, _, name = table.partition(".")
    return Asset(name=table, uri=f"iceberg://lakehouse/{namespace}/{name}", group="bronze")
