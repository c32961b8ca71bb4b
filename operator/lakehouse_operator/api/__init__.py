"""The IngestionRun API types: group/version, phases, conditions and the status model."""

GROUP = "lakehouse.dev"
VERSION = "v1alpha1"
PLURAL = "ingestionruns"
KIND = "IngestionRun"
