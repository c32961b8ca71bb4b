"""Keeping bronze tables healthy: compaction of small files, snapshot expiry and orphan file removal.

`runner.maintain` runs the three for one dataset as its contract's `maintenance` block says, under a lock per
table; the operator schedules it (operator/lakehouse_operator/maintenance_scheduler.py) and
`lakehouse maintenance run DATASET` runs it by hand.
"""
