"""OpenLineage events of the IngestionRuns: what each run read and wrote, as lineage backends (Marquez, DataHub,
OpenMetadata) expect it.

`events.py` builds a run's events (pure functions), `naming.py` names its datasets after the OpenLineage naming
spec, `settings.py` reads where they go, `publisher.py` sends them with the openlineage-python client. The operator
writes each event into the `lineage_outbox` table in the transaction of the run's rows and relays it from there
(operator/lakehouse_operator/lineage_records.py), so an event is never lost and never sent before its run's rows.
"""
