"""`abair models list`: the registry as a table a person reads (versions, aliases, tags, metrics)."""

from __future__ import annotations

from flows.runtime import pipeline_from
from tasks.registry import configure_mlflow, list_registered_models

SHOWN_TAGS = ("component.", "dataset", "promotion.", "champion.", "abair.retune")


def render_models_table(rows: list[dict]) -> str:
    """Markdown table of registry rows; tags limited to the ones that link and explain versions."""
    lines = ["| model | version | aliases | tags | headline metrics |", "|---|---:|---|---|---|"]
    for row in rows:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(row.get("tags", {}).items()) if k.startswith(SHOWN_TAGS))
        metrics = ", ".join(f"{k}={v}" for k, v in sorted(row.get("metrics", {}).items()))
        aliases = ", ".join(row.get("aliases", []))
        lines.append(f"| {row['name']} | {row['version']} | {aliases} | {tags} | {metrics} |")
    return "\n".join(lines)


def list_models(pipeline: str | None = None, prefix: str = "abair") -> str:
    """The registered models whose name starts with ``prefix`` as a Markdown table."""
    configure_mlflow(pipeline_from(pipeline))
    rows = list_registered_models(prefix=prefix)
    if not rows:
        return f"no registered models named {prefix}* yet: run `abair train --config configs/train/demo.yaml`"
    return render_models_table(rows)
