"""Summarise a restoration run and render it as ``report.json`` and ``report.md``.

The summary answers what a data team asks the morning after: how many images were restored,
passed through or refused and why, how fast, and which degradations this archive holds (the mean
estimator probability per class, the "degradation mix").
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from abair_core.io.storage import atomic_write_bytes, join_uri
from abair_core.restore.manifest import ACTIONS, STATE_PREFIX, STATUSES

__all__ = ["gate_summary", "render_report_markdown", "run_failed", "summarize", "write_report"]

logger = logging.getLogger(__name__)
MAX_LISTED = 200  # failures / quarantined rows listed in the Markdown report


def summarize(
    rows: Iterable[Mapping[str, Any]], wall_seconds: float, skipped: int = 0, refused: int = 0
) -> dict[str, Any]:
    """Counts by status and action, throughput, degradation mix and failures of one run's rows.

    ``failure_rate`` is the share of the run's images that failed for reasons other than bad input
    (quarantined rows count in the denominator, never in the numerator). ``skipped`` and ``refused``
    are reported as given (planning's numbers; refused keys may also appear as quarantined rows).
    """
    rows = [dict(r) for r in rows]
    status_counts = Counter(r.get("status") for r in rows)
    action_counts = Counter(r.get("action") for r in rows if r.get("status") == "ok")
    ok_rows = [r for r in rows if r.get("status") == "ok"]
    megapixels = sum((r.get("width") or 0) * (r.get("height") or 0) for r in ok_rows) / 1e6
    wall = max(float(wall_seconds), 1e-9)
    failed = [r for r in rows if r.get("status") == "failed"]
    quarantined = [r for r in rows if r.get("status") == "quarantined"]
    return {
        "run_id": _single(rows, "run_id"),
        "model_version": _single(rows, "model_version"),
        "settings_hash": _single(rows, "settings_hash"),
        "images": len(rows),
        "skipped": int(skipped),
        "refused": int(refused),
        "by_status": {s: status_counts.get(s, 0) for s in STATUSES},
        "by_action": {a: action_counts.get(a, 0) for a in ACTIONS if a != "none"},
        "wall_seconds": float(wall_seconds),
        "images_per_second": len(rows) / wall,
        "megapixels": megapixels,
        "megapixels_per_second": megapixels / wall,
        "input_bytes": sum(r.get("input_bytes") or 0 for r in rows),
        "output_bytes": sum(r.get("output_bytes") or 0 for r in ok_rows),
        "degradation_mix": degradation_mix(rows),
        "plausibility_gates": gate_summary(rows),
        "failure_rate": len(failed) / len(rows) if rows else 0.0,
        "failures": [_problem(r) for r in failed],
        "quarantined": [_problem(r) for r in quarantined],
    }


def degradation_mix(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Mean estimator probability per class over the images the estimator saw, largest first."""
    totals: Counter[str] = Counter()
    seen = 0
    for row in rows:
        probs = json.loads(row.get("probabilities") or "{}")
        if not probs:
            continue
        seen += 1
        totals.update({k: float(v) for k, v in probs.items()})
    if not seen:
        return {}
    return dict(sorted(((k, v / seen) for k, v in totals.items()), key=lambda kv: (-kv[1], kv[0])))


def gate_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How often the plausibility gates acted: images where a vetoed class lost probability (per class),
    and images they *overruled*, whose estimator's top class before the gates was a vetoed one.

    That top class is the row's ``top_before_gates``; rows written before the column existed rebuild it by
    moving ``gated`` back out of ``clean`` (where the gates of that time sent it)."""
    by_class: Counter[str] = Counter()
    overruled = 0
    for row in rows:
        gated = {k: float(v) for k, v in json.loads(row.get("gated") or "{}").items()}
        if not gated:
            continue
        by_class.update(gated.keys())
        if row.get("top_before_gates"):
            overruled += int(row["top_before_gates"] in gated)
            continue
        raw = {k: float(v) for k, v in json.loads(row.get("probabilities") or "{}").items()}
        for name, moved in gated.items():
            raw[name] = raw.get(name, 0.0) + moved
        if "clean" in raw:
            raw["clean"] -= sum(gated.values())
        if raw and max(raw, key=lambda k: (raw[k], k)) in gated:
            overruled += 1
    return {"overruled": overruled, "by_class": dict(sorted(by_class.items(), key=lambda kv: (-kv[1], kv[0])))}


def _problem(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"key": row.get("key"), "reason": row.get("reason") or "", "message": row.get("message") or ""}


def _single(rows: list[dict[str, Any]], column: str) -> str | None:
    """The column's value if all rows agree, else ``None`` (or a comma list when a run mixed values)."""
    values = sorted({str(r[column]) for r in rows if r.get(column)})
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


def run_failed(summary: Mapping[str, Any], max_failure_rate: float) -> bool:
    """Whether the run must end Failed: more images failed (bad input excluded) than ``max_failure_rate``."""
    return float(summary.get("failure_rate", 0.0)) > float(max_failure_rate)


def _cell(value: Any) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def render_report_markdown(summary: Mapping[str, Any]) -> str:
    """The human-readable report: counts, throughput, degradation mix, failures and quarantine."""
    lines = [f"# Restoration report: run {summary.get('run_id') or '-'}", ""]
    lines += [
        f"- Model version: {summary.get('model_version') or '-'}",
        (
            f"- Images processed: {summary['images']} (skipped as current: {summary.get('skipped', 0)}, "
            f"refused: {summary.get('refused', 0)})"
        ),
        (
            f"- Wall time: {summary['wall_seconds']:.1f} s, {summary['images_per_second']:.2f} images/s, "
            f"{summary['megapixels_per_second']:.3f} MP/s ({summary['megapixels']:.2f} MP)"
        ),
        f"- Failure rate (bad input excluded): {summary['failure_rate']:.2%}",
        "",
        "## Counts",
        "",
        "| status | images |",
        "|---|---:|",
    ]
    lines += [f"| {s} | {n} |" for s, n in summary["by_status"].items()]
    lines += ["", "| action (ok images) | images |", "|---|---:|"]
    lines += [f"| {a} | {n} |" for a, n in summary["by_action"].items()]
    lines += ["", "## Degradation mix", ""]
    mix = summary.get("degradation_mix") or {}
    if mix:
        lines += ["| class | mean probability |", "|---|---:|"]
        lines += [f"| {_cell(k)} | {v:.3f} |" for k, v in mix.items()]
    else:
        lines.append("No image reached the estimator.")
    gates = summary.get("plausibility_gates") or {}
    if gates.get("by_class"):
        lines += ["", "## Plausibility gates", "",
                  ("Images whose estimator's top class was physically implausible and was overruled: "
                   f"{gates.get('overruled', 0)}."), "",
                  "| vetoed class | images |", "|---|---:|"]
        lines += [f"| {_cell(k)} | {n} |" for k, n in gates["by_class"].items()]
    for title, key in (("Failures", "failures"), ("Quarantined (bad input)", "quarantined")):
        entries = summary.get(key) or []
        lines += ["", f"## {title} ({len(entries)})", ""]
        if not entries:
            lines.append("None.")
            continue
        lines += ["| key | reason | message |", "|---|---|---|"]
        lines += [f"| {_cell(e['key'])} | {_cell(e['reason'])} | {_cell(e['message'])} |" for e in entries[:MAX_LISTED]]
        if len(entries) > MAX_LISTED:
            lines.append(f"\n... and {len(entries) - MAX_LISTED} more (see report.json).")
    return "\n".join(lines) + "\n"


def write_report(dst_uri: str, summary: Mapping[str, Any]) -> dict[str, str]:
    """Write ``report.json`` and ``report.md`` atomically under ``_abair/`` and into the run's folder."""
    payload_json = json.dumps(summary, indent=2, sort_keys=True).encode("utf-8")
    payload_md = render_report_markdown(summary).encode("utf-8")
    folders = [STATE_PREFIX]
    if summary.get("run_id") and "," not in str(summary["run_id"]):
        folders.append(f"{STATE_PREFIX}/runs/{summary['run_id']}")
    written: dict[str, str] = {}
    for folder in folders:
        for name, payload in (("report.json", payload_json), ("report.md", payload_md)):
            uri = join_uri(dst_uri, f"{folder}/{name}")
            atomic_write_bytes(uri, payload)
            written[f"{folder}/{name}"] = uri
    logger.info("report written: %s", ", ".join(written))
    return written
