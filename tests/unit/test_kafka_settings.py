"""How the platform's Kafka clients connect, from the environment the chart sets (lakehouse.settings)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lakehouse.settings import KafkaSettings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> KafkaSettings:
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return KafkaSettings()


def test_plain_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(monkeypatch).client_config() == {
        "bootstrap.servers": "kafka:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_a_strimzi_scram_listener_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_USERNAME="lakehouse",
        KAFKA_SASL_PASSWORD="s3cret",
        KAFKA_SSL_CA_LOCATION="/etc/lakehouse/kafka-ca/ca.crt",
    ).client_config()
    assert config == {
        "bootstrap.servers": "kafka:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "lakehouse",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/lakehouse/kafka-ca/ca.crt",
    }


def test_sasl_without_credentials_is_refused_without_echoing_values(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(monkeypatch, KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_PASSWORD="s3cret")
    assert "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_ca_file_only_matters_with_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(monkeypatch, KAFKA_SSL_CA_LOCATION="/ca.crt").client_config()
    assert "ssl.ca.location" not in config
