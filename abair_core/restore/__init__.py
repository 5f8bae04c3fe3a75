"""Batch restoration of image archives without orchestration: plan, restore chunks, manifests, reports."""

from abair_core.restore.chunk import ImageRestorer, RestoreOutput, call_with_retries, restore_chunk
from abair_core.restore.manifest import (
    RESULT_SCHEMA,
    STATE_PREFIX,
    merge_manifests,
    read_current_manifest,
    read_run_rows,
    refused_rows,
    write_run_manifest,
)
from abair_core.restore.plan import (
    Chunk,
    RestoreSettings,
    WorkItem,
    WorkPlan,
    new_run_id,
    plan_from_listing,
    plan_work,
    read_work_manifest,
    settings_hash,
)
from abair_core.restore.report import render_report_markdown, run_failed, summarize, write_report

__all__ = [
    "RESULT_SCHEMA",
    "STATE_PREFIX",
    "Chunk",
    "ImageRestorer",
    "RestoreOutput",
    "RestoreSettings",
    "WorkItem",
    "WorkPlan",
    "call_with_retries",
    "merge_manifests",
    "new_run_id",
    "plan_from_listing",
    "plan_work",
    "read_current_manifest",
    "read_run_rows",
    "read_work_manifest",
    "refused_rows",
    "render_report_markdown",
    "restore_chunk",
    "run_failed",
    "settings_hash",
    "summarize",
    "write_report",
    "write_run_manifest",
]
