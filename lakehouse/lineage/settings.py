"""Where the operator sends OpenLineage events, from the environment only (the chart's `lineage` values)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.settings import KafkaSettings

TransportName = Literal["none", "http", "kafka", "file", "console"]


class LineageSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    # none: no lineage events are recorded at all.
    transport: TransportName = Field(default="none", alias="LAKEHOUSE_LINEAGE_TRANSPORT")
    # http: Marquez (`http://marquez:5000`, endpoint api/v1/lineage) or DataHub's GMS (endpoint openapi/openlineage/
    # api/v1/lineage), with an API key (a bearer token) from a Secret.
    url: str | None = Field(default=None, alias="LAKEHOUSE_LINEAGE_URL")
    endpoint: str = Field(default="api/v1/lineage", alias="LAKEHOUSE_LINEAGE_ENDPOINT")
    api_key: SecretStr | None = Field(default=None, alias="LAKEHOUSE_LINEAGE_API_KEY")
    # kafka: this topic, on the platform's own Kafka connection (KAFKA_* settings: TLS and SASL included).
    kafka_topic: str = Field(default="openlineage", alias="LAKEHOUSE_LINEAGE_KAFKA_TOPIC")
    # file: events appended to this file, one JSON document a line.
    file: str | None = Field(default=None, alias="LAKEHOUSE_LINEAGE_FILE")
    timeout_seconds: float = Field(default=10.0, gt=0, alias="LAKEHOUSE_LINEAGE_TIMEOUT_SECONDS")
    # The OpenLineage job namespace of the ingestion jobs (one job per dataset: `ingest.<dataset>`).
    job_namespace: str = Field(default="lakehouse", alias="LAKEHOUSE_LINEAGE_NAMESPACE")
    # The dataset namespace of the bronze tables; empty: the Iceberg catalog's URI (naming.py says why).
    table_namespace: str | None = Field(default=None, alias="LAKEHOUSE_LINEAGE_TABLE_NAMESPACE")

    @model_validator(mode="after")
    def _complete(self) -> LineageSettings:
        if self.transport == "http" and not self.url:
            raise ValueError("LAKEHOUSE_LINEAGE_TRANSPORT=http needs LAKEHOUSE_LINEAGE_URL")
        if self.transport == "file" and not self.file:
            raise ValueError("LAKEHOUSE_LINEAGE_TRANSPORT=file needs LAKEHOUSE_LINEAGE_FILE")
        return self

    @property
    def enabled(self) -> bool:
        return self.transport != "none"

    def transport_config(self, kafka: KafkaSettings | None = None) -> dict[str, Any]:
        """The openlineage-python transport configuration (its factory's dictionary)."""
        match self.transport:
            case "http":
                config: dict[str, Any] = {
                    "type": "http",
                    "url": self.url,
                    "endpoint": self.endpoint,
                    "timeout": self.timeout_seconds,
                }
                if self.api_key:
                    config["auth"] = {"type": "api_key", "apiKey": self.api_key.get_secret_value()}
                return config
            case "kafka":
                connection = (kafka or KafkaSettings()).client_config()
                return {
                    "type": "kafka",
                    "topic": self.kafka_topic,
                    # The send waits for the broker (acks=all) for at most the timeout, never for ever.
                    "config": {**connection, "acks": "all", "message.timeout.ms": int(self.timeout_seconds * 1000)},
                    "flush": True,
                }
            case "file":
                return {"type": "file", "log_file_path": self.file, "append": True}
            case _:
                return {"type": self.transport}
