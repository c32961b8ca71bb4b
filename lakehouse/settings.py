"""Endpoints and credentials of the platform's services, from the environment only.

In a cluster they come from the Deployment's env (Secrets via secretKeyRef); locally from
`eval "$(make -s env)"`. Secrets have no defaults and never come from argv.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Content-Type of each part of a multipart upload; the object's own type is the one CreateMultipartUpload set.
PART_CONTENT_TYPE = "application/octet-stream"


def _label_part_as_bytes(params: dict[str, Any], **_: Any) -> None:
    """S3 gives a part's Content-Type no meaning (the object keeps the type CreateMultipartUpload gave it), but
    SeaweedFS (the S3 of the dev stack and of docs/install.md) sniffs a part sent without one, gzips it when it looks
    like text and decompresses it on every read: about a third of its CPU for an uploaded CSV. Labelled as bytes,
    a part is stored as sent, at its full size. The README's Performance section has the figures."""
    params["headers"].setdefault("Content-Type", PART_CONTENT_TYPE)


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    endpoint_url: str | None = Field(default=None, alias="S3_ENDPOINT_URL")
    access_key_id: SecretStr | None = Field(default=None, alias="AWS_ACCESS_KEY_ID")
    secret_access_key: SecretStr | None = Field(default=None, alias="AWS_SECRET_ACCESS_KEY")
    region: str = Field(default="us-east-1", alias="AWS_REGION")
    # MinIO, SeaweedFS and most on-premise stores want path-style addressing.
    path_style: bool = Field(default=True, alias="S3_PATH_STYLE")

    def client(
        self,
        *,
        max_attempts: int = 5,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_pool_connections: int = 10,
        signature_version: str | None = None,  # "s3v4" for presigned URLs (boto3 may presign with v2)
    ):  # -> botocore S3 client (its type is generated at run time)
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id.get_secret_value() if self.access_key_id else None,
            aws_secret_access_key=self.secret_access_key.get_secret_value() if self.secret_access_key else None,
            config=Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                retries={"max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max_pool_connections,
                signature_version=signature_version,
            ),
        )
        client.meta.events.register("before-call.s3.UploadPart", _label_part_as_bytes)
        return client

    def pyiceberg_properties(self) -> dict[str, str]:
        """FileIO properties for PyIceberg (the catalog may also vend its own)."""
        properties = {"s3.region": self.region, "s3.path-style-access": str(self.path_style).lower()}
        if self.endpoint_url:
            properties["s3.endpoint"] = self.endpoint_url
        if self.access_key_id and self.secret_access_key:
            properties["s3.access-key-id"] = self.access_key_id.get_secret_value()
            properties["s3.secret-access-key"] = self.secret_access_key.get_secret_value()
        return properties


class CatalogSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    uri: str = Field(alias="ICEBERG_CATALOG_URI")
    warehouse: str = Field(alias="ICEBERG_WAREHOUSE")
    token: SecretStr | None = Field(default=None, alias="ICEBERG_CATALOG_TOKEN")
    name: str = Field(default="lakehouse", alias="ICEBERG_CATALOG_NAME")
    # Every request to the catalog gives up after this, so an outage is a failed attempt, not a hang.
    timeout_seconds: float = Field(default=30.0, gt=0, alias="ICEBERG_CATALOG_TIMEOUT_SECONDS")


class KafkaSettings(BaseSettings):
    """How every Kafka client of the platform connects: plain, TLS, SASL or both (a Strimzi listener with a
    KafkaUser: the cluster CA's ca.crt as a file, the user's password from its Secret)."""

    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    bootstrap_servers: str = Field(alias="KAFKA_BOOTSTRAP_SERVERS")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", alias="KAFKA_SASL_MECHANISM"
    )
    sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    sasl_password: SecretStr | None = Field(default=None, alias="KAFKA_SASL_PASSWORD")
    # A PEM file of the CA that signed the brokers' certificates; unset: the system's CAs.
    ssl_ca_location: str | None = Field(default=None, alias="KAFKA_SSL_CA_LOCATION")

    @model_validator(mode="after")
    def _sasl_credentials(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings of a connection; each client adds its own behaviour to them."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL") and self.sasl_username and self.sasl_password:
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password.get_secret_value(),
            }
        if self.ssl_ca_location and self.security_protocol.endswith("SSL"):
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    url: SecretStr = Field(alias="DATABASE_URL")


class PlatformSettings:
    """Lazily loaded, so a component only needs the variables of the services it really uses."""

    @cached_property
    def s3(self) -> S3Settings:
        return S3Settings()

    @cached_property
    def catalog(self) -> CatalogSettings:
        return CatalogSettings()

    @cached_property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings()

    @cached_property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings()
