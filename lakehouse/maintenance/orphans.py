"""Orphan file removal: files under a table's location that no snapshot of it references.

They come from expired snapshots, from commits that were refused or abandoned (their data files written, the
commit never made) and from writers killed before their commit. A file is deleted only when it is older than
a safety age, because a commit in flight has written its files and not yet referenced them.

The objects are listed before the table's metadata is loaded: a file committed before that load is referenced
by it, and one committed after it is younger than the listing, so within the safety age.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

log = logging.getLogger(__name__)
_DELETE_BATCH = 1000  # the most keys one S3 DeleteObjects request takes


@dataclass(frozen=True)
class StoredObject:
    uri: str  # s3://bucket/key
    last_modified: dt.datetime


def normalized(uri: str) -> str:
    """The same object whichever S3 scheme a writer used (Spark's Hadoop writers say s3a://)."""
    parsed = urlparse(uri)
    return f"s3://{parsed.netloc}{parsed.path}" if parsed.scheme in ("s3", "s3a", "s3n") else uri


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata reaches: metadata files, manifest lists, manifests and live data and
    delete files of every snapshot."""
    metadata = table.metadata
    files = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    files |= {statistics.statistics_path for statistics in metadata.statistics}
    files |= {statistics.statistics_path for statistics in metadata.partition_statistics}
    manifests = {}
    for snapshot in metadata.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            manifests[manifest.manifest_path] = manifest
    for path, manifest in manifests.items():
        files.add(path)
        files |= {entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)}
    return {normalized(f) for f in files}


def orphans(stored: Iterable[StoredObject], referenced: set[str], older_than: dt.datetime) -> list[str]:
    return sorted(o.uri for o in stored if o.uri not in referenced and o.last_modified < older_than)


def list_objects(s3: Any, location: str) -> Iterator[StoredObject]:
    """Every object below the table's location (its folder: `…/orders/`, never `…/orders_v2/`)."""
    parsed = urlparse(normalized(location))
    prefix = parsed.path.lstrip("/").rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):  # a folder, as SeaweedFS lists them: never a table's file
                continue
            yield StoredObject(f"s3://{parsed.netloc}/{item['Key']}", item["LastModified"])


def remove_orphan_files(catalog: Catalog, s3: Any, identifier: str, min_age: dt.timedelta) -> int:
    """Deletes the table's orphan files older than `min_age`; how many."""
    location = catalog.load_table(identifier).location()
    started = dt.datetime.now(dt.UTC)
    stored = list(list_objects(s3, location))
    table = catalog.load_table(identifier)  # after the listing (see above)
    doomed = orphans(stored, referenced_files(table), started - min_age)
    for start in range(0, len(doomed), _DELETE_BATCH):
        batch = [urlparse(uri) for uri in doomed[start : start + _DELETE_BATCH]]
        answer = s3.delete_objects(
            Bucket=batch[0].netloc, Delete={"Objects": [{"Key": p.path.lstrip("/")} for p in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            raise OSError(f"S3 refused to delete {len(answer['Errors'])} orphan files: {answer['Errors'][0]}")
    if doomed:
        log.info("removed %d orphan files of %s", len(doomed), identifier)
    return len(doomed)
