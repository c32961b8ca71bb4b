"""Contracts from the cluster: the Dataset objects of one namespace, listed with a short cache.

A Dataset's spec is its contract. A valid Dataset replaces the file contract of the same name (the packaged ones,
or LAKEHOUSE_CONTRACTS_DIR, which stay as the fallback); an invalid one makes its dataset unavailable, with the
error, and never affects another dataset. While the API server cannot be listed, the last listing stands (the
file contracts before the first one succeeds).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractError, ContractRegistry, UnknownDatasetError
from lakehouse.k8s.dataset import GROUP, PLURAL, VERSION, dataset_name

log = logging.getLogger(__name__)
ListDatasets = Callable[[], list[dict[str, Any]]]
# How old a listing may be before it is read again, and on a miss (a Dataset applied a moment ago).
CACHE_SECONDS = 2.0
MISS_REFRESH_SECONDS = 0.2


class InvalidDatasetError(UnknownDatasetError):
    def __init__(self, dataset: str, error: str) -> None:
        LookupError.__init__(self, f"the Dataset {dataset!r} is invalid: {error}")
        self.dataset = dataset
        self.known = []


def contract_from_dataset(body: dict[str, Any]) -> DatasetContract:
    """The contract a Dataset object declares; ContractError with every field at fault when it is invalid."""
    spec = {**body.get("spec", {}), "name": dataset_name(body)}
    try:
        return DatasetContract.model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise ContractError(problems) from None


@dataclass(frozen=True)
class DatasetEntry:
    """One Dataset as listed: its contract, or why it has none."""

    generation: int
    contract: DatasetContract | None
    error: str | None


def entries_of(items: list[dict[str, Any]]) -> dict[str, DatasetEntry]:
    entries: dict[str, DatasetEntry] = {}
    for body in items:
        generation = body["metadata"].get("generation", 1)
        try:
            entries[dataset_name(body)] = DatasetEntry(generation, contract_from_dataset(body), None)
        except ContractError as error:
            entries[dataset_name(body)] = DatasetEntry(generation, None, str(error))
    return entries


class ClusterContracts(ContractRegistry):
    """A ContractRegistry whose contracts are the namespace's Datasets over the fallback's."""

    def __init__(self, list_datasets: ListDatasets, fallback: ContractRegistry) -> None:
        super().__init__({})
        self._list = list_datasets
        self._fallback = fallback
        self._fallback_names = frozenset(fallback.names())
        self._entries: dict[str, DatasetEntry] = {}
        self._listed_at = float("-inf")
        self._lock = threading.Lock()

    def _current(self, max_age: float = CACHE_SECONDS) -> dict[str, DatasetEntry]:
        with self._lock:
            if time.monotonic() - self._listed_at > max_age:
                try:
                    self._entries = entries_of(self._list())
                except Exception as error:  # the API server down, or no Dataset CRD: the last listing stands
                    log.warning("could not list Datasets (%s); using the last listing", error)
                self._listed_at = time.monotonic()
            return self._entries

    def entry(self, dataset: str) -> DatasetEntry | None:
        """The Dataset of this name; None if it has none. A name that is neither a Dataset nor a contract file
        is listed again at once (a Dataset applied a moment ago); a name with a contract file is not, or each of
        its runs would list the Datasets again (a consistent list, which waits for the API server's cache:
        ~60 ms of a run's validation under load), and its Dataset takes effect within CACHE_SECONDS, as any
        change to a Dataset does."""
        entries = self._current()
        if dataset not in entries and dataset not in self._fallback_names:
            entries = self._current(MISS_REFRESH_SECONDS)
        return entries.get(dataset)

    def pinned(self, dataset: str) -> tuple[DatasetContract, int | None]:
        """The contract a new run of the dataset uses throughout, and its Dataset's generation (None: a file's)."""
        entry = self.entry(dataset)
        if entry is None:
            try:
                return self._fallback.get(dataset), None
            except UnknownDatasetError:
                raise UnknownDatasetError(dataset, self.names()) from None
        if entry.contract is None:
            raise InvalidDatasetError(dataset, entry.error or "")
        return entry.contract, entry.generation

    def get(self, dataset: str) -> DatasetContract:
        return self.pinned(dataset)[0]

    def _contracts_now(self) -> dict[str, DatasetContract]:
        entries = self._current()
        contracts = {c.name: c for c in self._fallback if c.name not in entries}
        contracts.update({name: e.contract for name, e in entries.items() if e.contract is not None})
        return contracts

    def names(self) -> list[str]:
        return sorted(self._contracts_now())

    def __iter__(self) -> Iterator[DatasetContract]:
        return iter(self._contracts_now().values())


def contracts_of(namespace: str, timeout: float = 5.0) -> ContractRegistry:
    """For a process outside the operator and the API (the CLI): the namespace's Datasets over the file contracts
    when a cluster is configured (in a pod, or a kubeconfig), else the file contracts alone."""
    from kubernetes import client, config  # only when asked: most commands never talk to the cluster

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            # KUBECONFIG (else ~/.kube/config) read now: the kubernetes package's default is fixed when it is
            # imported, so a KUBECONFIG set then and unset since would still be read.
            kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
            config.load_kube_config(config_file=kubeconfig)
        except (config.ConfigException, OSError):
            return ContractRegistry.default()
    return ClusterContracts(datasets_lister(client.CustomObjectsApi, namespace, timeout), ContractRegistry.default())


def datasets_lister(api: Callable[[], Any], namespace: str, timeout: float = 5.0) -> ListDatasets:
    """Lists the namespace's Datasets with the kubernetes CustomObjectsApi `api()` returns, called on the first
    listing (the kubernetes configuration is loaded by then) and kept: the operator passes the class, and a client
    made per listing opened a new TLS connection each time."""
    kept = functools.cache(api)

    def list_datasets() -> list[dict[str, Any]]:
        listing = kept().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _request_timeout=timeout)
        return listing["items"]

    return list_datasets
