"""Rewrite one ``## `` section of docs/BENCHMARKS.md, leaving the sections of other scripts alone.

Importing it also puts the repository root (``ROOT``) on ``sys.path``, so a benchmark script run as
``python benchmarks/NAME.py`` (or loaded by file in the tests) can import the project's packages.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def update_section(path: Path, title: str, body: str) -> None:
    """Replace the ``## title`` section of a Markdown file (up to the next ``## ``), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    heading = f"## {title}"
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    section = [f"{heading}\n", "\n", body if body.endswith("\n") else body + "\n"]
    if start is None:
        new = text.rstrip("\n") + "\n\n" + "".join(section)
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = ["\n", *lines[end:]] if end < len(lines) else []
        new = "".join(lines[:start] + section + tail)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
