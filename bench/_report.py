"""bench/results/<name>.json (end_to_end.py) as a Markdown table against the issue's targets, and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR

TARGETS = {
    "small_p50_seconds": 0.3,
    "ratio_to_reference": 0.25,
    "burst_wall_seconds": 20,
    "api_peak_rss_mib": 150,
    "operator_peak_rss_mib": 300,
}
# The sizes the burst and API targets are set for: a smaller run (--quick) is shown, not judged.
TARGET_BURST = {"uploads": 100, "rows_each": 10_000}
TARGET_UPLOAD_BYTES = 2**30


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(report: dict[str, Any]) -> str:
    figures = report["results"][0]
    machine = report["machine"]
    lines = [
        f"End to end on the local stack, {report['when'][:10]} (sizes: {figures['size']}): {machine['cpus']} cores "
        f"({machine['cpu_model']}), {machine['memory_gib']} GiB, load average {machine['load_average'][0]} at the "
        "end (the stack's servers and other work share the cores). From the HTTP upload to Succeeded, rows read back.",
        "",
        "| scenario | figure | target | |",
        "|---|---|---|---|",
    ]
    for small in figures.get("small_files", []):
        steps = ", ".join(f"{step} {seconds}" for step, seconds in small["median_steps_seconds"].items())
        target = f"≤ {TARGETS['small_p50_seconds']} s" if small["path"].startswith("builtin+arrow") else ""
        lines.append(
            f"| 1,000-row CSV, {small['path']}, {small['uploads']} sequential | p50 {small['p50_seconds']} s, "
            f"p95 {small['p95_seconds']} s (median s: {steps}) | {target} | "
            f"{_verdict(small['p50_seconds'] <= TARGETS['small_p50_seconds']) if target else ''} |"
        )
    for large in figures.get("large_files", []):
        ratio_target = "builtin+arrow" in large["path"]
        operator = large["peak_rss_mib"].get("operator")
        lines.append(
            f"| {large['rows']:,}-row orders CSV ({large['bytes'] / 1e6:.0f} MB), {large['path']} | "
            f"{large['seconds']} s (upload {large['upload_seconds']} s), {large['rows_per_second']:,} rows/s, "
            f"{large['mb_per_second']} MB/s; pyarrow reference {large['reference_seconds']} s: ratio "
            f"{large['ratio_to_reference']}; operator peak RSS {operator} MiB | "
            f"{'≥ 0.25 (aim 0.5); operator ≤ 300 MiB' if ratio_target else ''} | "
            + (
                f"{_verdict(large['ratio_to_reference'] >= TARGETS['ratio_to_reference'])}, "
                f"{_verdict((operator or 0) <= TARGETS['operator_peak_rss_mib'])} |"
                if ratio_target
                else " |"
            )
        )
    if burst := figures.get("burst"):
        ok = burst["wall_seconds"] <= TARGETS["burst_wall_seconds"] and not burst["runs_lost"]
        lines.append(
            f"| {burst['uploads']} x {burst['rows_each']:,}-row uploads at once | {burst['wall_seconds']} s wall "
            f"(accepted in {burst['uploads_accepted_seconds']} s), {burst['runs_lost']} lost, "
            f"{burst['duplicate_rows']} duplicate rows, {burst['commit_retries']} commit retries | ≤ 20 s, 0, 0 | "
            + (
                f"{_verdict(ok and not burst['duplicate_rows'])} |"
                if all(burst[key] == size for key, size in TARGET_BURST.items())
                else "not judged: the target is for 100 x 10,000 rows |"
            )
        )
    if memory := figures.get("memory"):
        lines.append(
            f"| API, one {memory['bytes'] / 2**30:.2f} GiB upload ({memory['mb_per_second']} MB/s) | peak RSS "
            f"{memory['api_peak_rss_mib']} MiB ({memory['api_rss_before_mib']} MiB before) | ≤ 150 MiB | "
            + (
                f"{_verdict(memory['api_peak_rss_mib'] <= TARGETS['api_peak_rss_mib'])} |"
                if memory["bytes"] >= TARGET_UPLOAD_BYTES
                else "not judged: the target is for 1 GiB |"
            )
        )
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = report["results"][0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    small = figures.get("small_files", [])
    names = [s["path"].split(" ")[0] for s in small]
    axes[0].bar(names, [s["p50_seconds"] for s in small], label="p50")
    axes[0].scatter(names, [s["p95_seconds"] for s in small], color="black", label="p95", zorder=3)
    axes[0].axhline(TARGETS["small_p50_seconds"], color="red", linestyle="--", label="target p50")
    axes[0].set(title="1,000-row CSV, upload → Succeeded", ylabel="seconds", yscale="log")
    axes[0].legend()
    large = figures.get("large_files", [])
    labels = [f"{item['rows'] / 1e6:g} M {item['path'].split(' ')[0]}" for item in large]
    axes[1].barh(labels, [item["seconds"] for item in large], label="end to end")
    axes[1].barh(labels, [item["reference_seconds"] for item in large], label="pyarrow reference", height=0.4)
    axes[1].set(title="Large orders CSV", xlabel="seconds")
    axes[1].legend()
    peaks = {}
    if memory := figures.get("memory"):
        peaks["API, upload"] = (memory["api_peak_rss_mib"], TARGETS["api_peak_rss_mib"])
    for item in large:
        if item["path"].startswith("builtin+arrow"):
            peaks[f"operator, {item['rows'] / 1e6:g} M"] = (item["peak_rss_mib"]["operator"], None)
    if burst := figures.get("burst"):
        peaks["operator, burst"] = (burst["peak_rss_mib"]["operator"], None)
    axes[2].bar(list(peaks), [value for value, _ in peaks.values()])
    axes[2].axhline(TARGETS["operator_peak_rss_mib"], color="red", linestyle="--", label="operator target")
    axes[2].axhline(TARGETS["api_peak_rss_mib"], color="orange", linestyle=":", label="API target")
    axes[2].set(title="Peak RSS", ylabel="MiB")
    axes[2].tick_params(axis="x", labelrotation=20)
    axes[2].legend()
    fig.suptitle(f"make bench, {report['when'][:10]}, {report['machine']['cpus']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(name: str) -> None:
    report = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    (RESULTS_DIR / f"{name}.md").write_text(markdown(report))
    chart(report, RESULTS_DIR / f"{name}.png")
    print(f"written to {RESULTS_DIR / name}.md and .png")


if __name__ == "__main__":
    import sys

    write_report(sys.argv[1] if len(sys.argv) > 1 else "end_to_end")
