"""Plain-text rendering of API answers for a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def runs_table(uploads: list[dict[str, Any]]) -> str:
    rows = [
        (
            u["uploadId"],
            u.get("phase") or "-",
            u["dataset"],
            (u.get("counts") or {}).get("written"),
            (u.get("counts") or {}).get("rejected"),
            u.get("table"),
            u.get("createdAt"),
        )
        for u in uploads
    ]
    return table(["upload", "phase", "dataset", "rows", "rejected", "table", "created"], rows)


def failure_reason(upload: dict[str, Any]) -> str:
    failed = next((c for c in upload.get("conditions", []) if c["type"] == "Failed"), None)
    if failed:
        return f"{failed['reason']}: {failed.get('message', '')}"
    return upload.get("message") or "no reason recorded"


def run_details(upload: dict[str, Any]) -> str:
    source = upload.get("source", {})
    counts = upload.get("counts") or {}
    lines = [
        f"upload     {upload['uploadId']}",
        f"dataset    {upload['dataset']}",
        f"phase      {upload.get('phase') or '-'}",
        f"message    {upload.get('message') or ''}",
        f"file       {source.get('filename', '')} ({source.get('format')}, {source.get('sizeBytes')} bytes)",
        f"object     {source.get('uri')}",
        f"table      {upload.get('table') or '-'}  snapshot {upload.get('snapshotId') or '-'}",
        "rows       " + ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "rows       -",
        f"created    {upload.get('createdAt')}  completed {upload.get('completionTime') or '-'}",
    ]
    if upload.get("phase") == "Failed":
        lines.append(f"reason     {failure_reason(upload)}")
    if upload.get("conditions"):
        lines += ["", "conditions"]
        lines.append(
            table(
                ["type", "status", "reason", "since"],
                [(c["type"], c["status"], c["reason"], c.get("lastTransitionTime")) for c in upload["conditions"]],
            )
        )
    if upload.get("events"):
        lines += ["", "events"]
        events = [(e.get("lastTime"), e["type"], e["reason"], e["message"]) for e in upload["events"]]
        lines.append(table(["time", "type", "reason", "message"], events))
    return "\n".join(lines)


def table_details(info: dict[str, Any]) -> str:
    lines = [
        f"table      {info['identifier']}",
        f"location   {info['location']}",
        f"snapshot   {info.get('snapshotId') or '-'}",
        f"rows       {info.get('rowCount')}",
        f"partition  {', '.join(info.get('partitioning', [])) or '-'}",
        "",
        table(["column", "type", "required"], [(c["name"], c["type"], c["required"]) for c in info["columns"]]),
    ]
    if info.get("snapshots") is not None:
        lines += ["", "snapshots"]
        keys = ["snapshotId", "committedAt", "operation", "addedRecords", "totalRecords", "uploadId"]
        snapshots = [[snapshot.get(k) for k in keys] for snapshot in info["snapshots"]]
        lines.append(table(["snapshot", "committed", "operation", "added", "total", "upload"], snapshots))
    return "\n".join(lines)


def lineage_table(snapshots: list[dict[str, Any]]) -> str:
    keys = ["snapshotId", "committedAt", "operation", "addedRecords", "runId", "uploadId", "sourceUri"]
    return table(
        ["snapshot", "committed", "operation", "added", "run", "upload", "source"],
        [[snapshot.get(k) for k in keys] for snapshot in snapshots],
    )
