"""`python -m lakehouse_operator`: run the operator for one namespace."""

from __future__ import annotations

import logging

import kopf

from lakehouse_operator import handlers  # noqa: F401  (registers the handlers)
from lakehouse_operator.settings import OperatorSettings


def main() -> None:
    settings = OperatorSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    liveness = f"http://{settings.listen_host}:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(standalone=True, namespaces=[settings.namespace], liveness_endpoint=liveness)


if __name__ == "__main__":
    main()
