"""`python -m lakehouse_operator`: run the operator for one namespace."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_operator",
        description="Run the IngestionRun operator (Kopf) for the namespace LAKEHOUSE_NAMESPACE. Its settings, "
        "endpoints and credentials come from the environment only (LAKEHOUSE_*, S3_*, AWS_*, ICEBERG_*, "
        "KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL; the chart sets them).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {importlib.metadata.version('lakehouse-ingest')}"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parse_args(argv)
    from lakehouse import memory

    memory.use_the_system_allocator_for_arrow()  # before pyarrow is imported
    memory.return_large_blocks_to_the_system()
    memory.share_malloc_arenas()
    memory.leave_pandas_out()  # before pyarrow.dataset is imported
    # Imported after the arguments: --help and --version answer without seconds of imports.
    import kopf

    from lakehouse.logs import log_json
    from lakehouse_operator import datasets, handlers  # noqa: F401  (registers the handlers)
    from lakehouse_operator.peering import run_options
    from lakehouse_operator.settings import OperatorSettings

    settings = OperatorSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log_json()
    liveness = f"http://{settings.listen_host}:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(namespaces=[settings.namespace], liveness_endpoint=liveness, **run_options(settings.peering_name))


if __name__ == "__main__":
    main()
