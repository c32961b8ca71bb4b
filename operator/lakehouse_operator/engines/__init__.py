"""Ingest and transform engines behind small interfaces, so the state machine never knows which one runs."""
