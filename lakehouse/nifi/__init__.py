"""Apache NiFi as the ingest engine: the flow's own step, its manifest, and the REST client that deploys it."""
