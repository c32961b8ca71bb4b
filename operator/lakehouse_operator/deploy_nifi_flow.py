"""Deploy (or update) the lakehouse-ingest flow ahead of the first NiFi run, with the operator's settings.

    python -m lakehouse_operator.deploy_nifi_flow

Reads the same environment as the operator (LAKEHOUSE_NIFI_*, S3_ENDPOINT_URL, AWS_*); prints the
process group's id. Useful in a Helm post-install hook or to check a NiFi from a workstation.
"""

from __future__ import annotations

import sys
import time

from lakehouse.nifi.client import NiFiApiError, NiFiUnavailableError
from lakehouse.nifi.deploy import FlowDeployer, FlowPending, NiFiFlowError
from lakehouse.settings import PlatformSettings
from lakehouse_operator.engines.nifi import NiFiIngestEngine, NiFiSettings
from lakehouse_operator.settings import OperatorSettings


def deploy(deployer: FlowDeployer, timeout: float = 600) -> str:
    """The running group's id, after as many deployment steps as NiFi needs. A command's loop: the
    operator's handlers take one step per call instead."""
    deadline = time.monotonic() + timeout
    while isinstance(state := deployer.step(), FlowPending):
        if time.monotonic() > deadline:
            raise NiFiFlowError(f"the flow is not running after {timeout:.0f}s: {state.message}")
        time.sleep(state.delay)
    return state.group_id


def main() -> int:
    settings = NiFiSettings()
    if not settings.enabled:
        print("set LAKEHOUSE_NIFI_API_URL, LAKEHOUSE_NIFI_LISTEN_URL and LAKEHOUSE_NIFI_LISTEN_TOKEN", file=sys.stderr)
        return 2
    operator = OperatorSettings()
    platform = PlatformSettings()
    engine = NiFiIngestEngine(
        settings, platform.s3, platform.s3.client(), operator.raw_bucket, operator.quarantine_bucket
    )
    try:
        group = deploy(engine.deployer)
    except (NiFiUnavailableError, NiFiApiError, NiFiFlowError) as error:
        print(f"deploy failed: {error}", file=sys.stderr)
        return 1
    print(f"{engine.deployer.flow_name} is running as process group {group} (deployed {engine.deployer.deploy_count}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
