"""``kind: images`` — pictures each job draws itself (t-SNE panels of Gao Fig. 4, VS-Boost Fig. 4, ZeroNAS
Fig. 4), gathered from a multirun into one folder with an index.

The paper prints no numbers for these figures, so there is nothing to put beside ours: the collation copies
each finished job's files matching the spec's ``images`` patterns (relative to the job directory) into
``<out>/<id>/`` as ``<row>__<column>__seed<s>__<file name>`` and writes ``table.md`` / ``table.csv``: one line
per picture with the job's row, column, seed, the epoch the picture shows (its ``.json`` side file, when the
callback wrote one) and the file. Jobs that did not finish (no results.json) are listed as missing.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

from zsl_lightning.report import render
from zsl_lightning.report.collate import Job
from zsl_lightning.report.paper import TableSpec


def _label(axes, job: Job, key: str) -> str:
    for axis in axes:
        if axis.match is not None and job.matches(axis.match):
            return axis.label
    try:
        return str(job.value(key))
    except KeyError:
        return "?"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def collect_images(spec: TableSpec, jobs: list[Job], out: Path) -> list[Path]:
    """Copy the jobs' pictures into ``out`` (module docstring); returns the files written (index first)."""
    out.mkdir(parents=True, exist_ok=True)
    lines, copied = [], []
    for job in jobs:
        row, col = _label(spec.rows, job, "method"), _label(spec.columns, job, "data")
        if job.results is None:
            lines.append({"row": row, "column": col, "seed": job.seed, "epoch": "", "file": "", "status": "missing"})
            continue
        found = sorted({p for pattern in spec.images for p in job.dir.glob(pattern) if p.is_file()})
        for src in found:
            dst = out / f"{_slug(row)}__{_slug(col)}__seed{job.seed}__{src.name}"
            shutil.copyfile(src, dst)
            copied.append(dst)
            side = src.with_suffix(".json")
            epoch = ""
            if side.is_file():
                try:
                    epoch = json.loads(side.read_text()).get("epoch", "")
                except (OSError, json.JSONDecodeError, AttributeError):
                    epoch = ""
            lines.append({"row": row, "column": col, "seed": job.seed, "epoch": epoch, "file": dst.name,
                          "status": "ok"})
        if not found:
            lines.append({"row": row, "column": col, "seed": job.seed, "epoch": "", "file": "",
                          "status": "no picture (was the callback on?)"})
    cols = ["row", "column", "seed", "epoch", "file", "status"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols)
    w.writeheader()
    w.writerows(lines)
    (out / "table.csv").write_text(buf.getvalue())
    md = [f"**{spec.title}** — pictures drawn by each job (the paper prints no numbers for this figure)", "",
          *render.md_table(cols, [[str(r[c]) for c in cols] for r in lines])]
    (out / "table.md").write_text("\n".join(md) + "\n")
    return [out / "table.md", out / "table.csv", *copied]
