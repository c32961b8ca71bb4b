"""The platform's Kafka topics with their production settings: created, or brought to them when they exist.

The chart's topics Job runs this (`python -m lakehouse.topics`) on clusters without Strimzi, whose users get
KafkaTopic resources instead; both are made from the chart's `kafka.topics.items`, the one home of the
topics' settings, which reaches this module as JSON in LAKEHOUSE_TOPICS:

    {"file-uploaded": {"partitions": 3, "replicas": 2, "config": {"retention.ms": "604800000"}}, ...}

Safe to run on every install and upgrade: it only adds partitions and sets the configs it names. What Kafka
cannot change in place (fewer partitions, another replication factor) is reported, never forced.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from lakehouse.events import TOPICS
from lakehouse.settings import KafkaSettings

log = logging.getLogger("lakehouse.topics")
_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replicas: int
    config: dict[str, str] = field(default_factory=dict)


class TopicSpecError(ValueError):
    pass


def parse_specs(text: str) -> list[TopicSpec]:
    """The topics of LAKEHOUSE_TOPICS; every topic the platform publishes to must be among them."""
    try:
        raw: dict[str, Any] = json.loads(text)
        specs = [
            TopicSpec(
                name,
                int(item["partitions"]),
                int(item["replicas"]),
                {key: str(value) for key, value in (item.get("config") or {}).items()},
            )
            for name, item in raw.items()
        ]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise TopicSpecError(f"LAKEHOUSE_TOPICS is not {{name: {{partitions, replicas, config}}}}: {error}") from error
    if missing := sorted(set(TOPICS) - {spec.name for spec in specs}):
        raise TopicSpecError(f"LAKEHOUSE_TOPICS lacks topics the platform publishes to: {', '.join(missing)}")
    if bad := [spec.name for spec in specs if spec.partitions < 1 or spec.replicas < 1]:
        raise TopicSpecError(f"partitions and replicas must be at least 1: {', '.join(bad)}")
    return specs


def ensure_topics(admin: AdminClient, specs: list[TopicSpec]) -> dict[str, str]:
    """Each topic's outcome: created, updated, unchanged, or a sentence on what Kafka cannot change."""
    existing = admin.list_topics(timeout=_TIMEOUT_SECONDS).topics
    outcomes: dict[str, str] = {}
    new = [spec for spec in specs if spec.name not in existing]
    if new:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replicas, config=s.config) for s in new],
            request_timeout=_TIMEOUT_SECONDS,
        )
        for name, future in futures.items():
            future.result()
            outcomes[name] = "created"
    for spec in specs:
        if spec.name not in existing:
            continue
        partitions = existing[spec.name].partitions
        notes = []
        if len(partitions) < spec.partitions:
            admin.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name].result()
            notes.append(f"partitions {len(partitions)} -> {spec.partitions}")
        elif len(partitions) > spec.partitions:
            notes.append(f"has {len(partitions)} partitions, more than {spec.partitions}: Kafka cannot remove any")
        replicas = len(next(iter(partitions.values())).replicas) if partitions else spec.replicas
        if replicas != spec.replicas:
            notes.append(f"has {replicas} replicas, not {spec.replicas}: reassign its partitions to change that")
        if changed := _set_configs(admin, spec):
            notes.append(f"set {', '.join(changed)}")
        outcomes[spec.name] = "; ".join(notes) or "unchanged"
    return outcomes


def _set_configs(admin: AdminClient, spec: TopicSpec) -> list[str]:
    """Sets the configs whose value differs; returns their names."""
    if not spec.config:
        return []
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    current = admin.describe_configs([resource], request_timeout=_TIMEOUT_SECONDS)[resource].result()
    changed = sorted(key for key, value in spec.config.items() if key not in current or current[key].value != value)
    if changed:
        entries = [ConfigEntry(key, spec.config[key], incremental_operation=AlterConfigOpType.SET) for key in changed]
        update = ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries)
        admin.incremental_alter_configs([update], request_timeout=_TIMEOUT_SECONDS)[update].result()
    return changed


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        specs = parse_specs(os.environ.get("LAKEHOUSE_TOPICS", ""))
    except TopicSpecError as error:
        log.error("%s", error)
        return 2
    admin = AdminClient(KafkaSettings().client_config())
    for name, outcome in ensure_topics(admin, specs).items():
        log.info("%s: %s", name, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
