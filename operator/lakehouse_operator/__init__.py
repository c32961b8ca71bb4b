"""The IngestionRun operator (Kopf). Run with `python -m lakehouse_operator`."""
