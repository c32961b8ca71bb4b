-- OpenLineage events of the runs wait here for the lineage backend (HTTP, Kafka or a file), like pipeline events
-- in event_outbox (002): written in the transaction of the run's rows, relayed by the operator's lineage relay,
-- marked sent once the backend took them. A table of its own, so a lineage backend that is down never holds up a
-- run's Kafka events; the same columns, constraints and indexes (one definition: 002), so the outbox code serves
-- both. `run_id` is the lineage run id, `data` the whole OpenLineage RunEvent, `topic` `openlineage.<eventType>`.

CREATE TABLE lineage_outbox (LIKE event_outbox INCLUDING ALL);
