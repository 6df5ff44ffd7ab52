"""Multirun directories → the paper's table: each cell is mean ± std over seeds beside the paper's number.

A job is a directory with ``.hydra/overrides.yaml``; its numbers are results.json ``headline`` (test split,
read at the epochs its selection chose). A job without results.json (interrupted, failed) counts for
nothing: its cell shows ``missing``, never 0. Jobs are grouped by everything but the seed: the row and
column they match, the selection mode (``eval.select=test_best`` is never averaged with validation
selection) and any other override that differs between the jobs (appended to the row label).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from zsl_lightning.report.paper import Axis, TableSpec

log = logging.getLogger(__name__)

#: override keys that never identify a cell: the seed, and what names or logs a run rather than changing it
IGNORED_KEYS = {"seed", "experiment", "task_name", "tags", "logger", "print_config", "trainer.enable_progress_bar"}
IGNORED_PREFIXES = ("hydra.", "hydra/", "paths.", "logger.")
#: how a selection mode other than validation is marked in every output
SELECTION_MARK = {"test_best": "selected on TEST (eval.select=test_best)", "last": "last epoch (eval.select=last)"}


def _norm(value):
    """Override strings and YAML values compare alike: ``"[g]"`` == ``['g']``, ``"0.30"`` == ``0.3``."""
    import yaml

    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


@dataclass
class Job:
    dir: Path
    overrides: dict[str, str]
    choices: dict
    results: dict | None
    config: dict = field(default_factory=dict)

    @property
    def seed(self):
        if self.results and "seed" in self.results:
            return self.results["seed"]
        return self.overrides.get("seed", self.config.get("seed"))

    @property
    def selection(self) -> str:
        return ((self.results or {}).get("selection") or {}).get("mode", "val")

    @property
    def headline(self) -> dict:
        return (self.results or {}).get("headline") or {}

    def value(self, key: str):
        """``key`` as this job ran it (module docstring of :mod:`.paper`); ``KeyError`` if unknown."""
        for source in (self.overrides, self.choices):
            if key in source:
                return _norm(source[key])
        if self.results and key in ("method", "data", "variant") and key in self.results:
            return _norm(self.results[key])
        node = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(key)
            node = node[part]
        return _norm(node)

    def matches(self, match: dict) -> bool:
        try:
            return all(self.value(k) == _norm(v) for k, v in match.items())
        except KeyError:
            return False


def _read_yaml(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def read_job(job_dir: Path) -> Job:
    lines = _read_yaml(job_dir / ".hydra" / "overrides.yaml") or []
    overrides = {}
    for line in lines:
        key, _, val = str(line).partition("=")
        overrides[key.lstrip("+~")] = val
    hydra_cfg = _read_yaml(job_dir / ".hydra" / "hydra.yaml") or {}
    choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    res_file = job_dir / "results.json"
    try:
        results = json.loads(res_file.read_text()) if res_file.is_file() else None
    except (OSError, json.JSONDecodeError):
        results = None
    config = _read_yaml(job_dir / "config_resolved.yaml") or _read_yaml(job_dir / ".hydra" / "config.yaml") or {}
    return Job(job_dir, overrides, {k: v for k, v in choices.items() if "/" not in k}, results, config)


def read_jobs(*roots: Path) -> list[Job]:
    """Every job under the multirun (or run) directories ``roots``, finished or not."""
    jobs = []
    for root in roots:
        for ov in sorted(Path(root).rglob("overrides.yaml"), key=lambda p: str(p)):
            if ov.parent.name == ".hydra" and "wandb" not in ov.parts:
                jobs.append(read_job(ov.parent.parent))
    return jobs


def experiment_of(jobs: list[Job]) -> str | None:
    """The experiment the jobs ran (``experiment=`` choice), or their task name."""
    for job in jobs:
        exp = job.choices.get("experiment") or job.overrides.get("experiment")
        if exp:
            return str(exp)
    for job in jobs:
        if job.config.get("task_name"):
            return str(job.config["task_name"])
    return None


@dataclass
class Cell:
    """One (row, column, selection) group: values per metric over its finished jobs."""

    values: dict[str, list[float]] = field(default_factory=dict)
    jobs: int = 0  # job directories, finished or not
    seeds: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)

    def stat(self, metric: str) -> tuple[float, float, int] | None:
        """(mean, sample std (0 for one value), n) of a metric, or None when no job reported it."""
        vals = [v for v in self.values.get(metric, []) if v is not None and math.isfinite(v)]
        if not vals:
            return None
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        return mean, std, len(vals)


@dataclass
class Collated:
    spec: TableSpec
    rows: list[Axis]  # the paper's rows (paper-only rows included), then rows for extra groups
    columns: list[Axis]  # the paper's columns, then datasets the paper does not have
    cells: dict[tuple[str, str], Cell]
    #: row label -> the selection mode its jobs used ('val' for the paper's own rows)
    selection: dict[str, str] = field(default_factory=dict)
    #: row label -> the paper row whose numbers it sits beside
    paper_row: dict[str, str] = field(default_factory=dict)
    unmatched: list[Job] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)

    def paper_value(self, row: str, col: str, metric: str) -> float | None:
        return self.spec.paper_value(self.paper_row.get(row, row), col, metric)


def _match_keys(axes) -> list[str]:
    return list(dict.fromkeys(k for a in axes if a.match for k in a.match))


def _extras(jobs: list[Job], used: set[str]) -> dict[int, str]:
    """Per job: the overrides (other than seed and the row / column keys) that differ between jobs."""
    keys = {k for j in jobs for k in j.overrides
            if k not in used and k not in IGNORED_KEYS and not k.startswith(IGNORED_PREFIXES)}
    varying = sorted(k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1)
    return {id(j): ", ".join(f"{k}={j.overrides[k]}" for k in varying if k in j.overrides) for j in jobs}


def collate(spec: TableSpec, jobs: list[Job], skip_columns: tuple[Axis, ...] = ()) -> Collated:
    """The spec's table from the jobs (module docstring).

    ``skip_columns``: columns of other tables the same experiment produces (Gupta et al. Table 2 is two
    tables, NUS-WIDE and Open Images): their jobs are left out instead of becoming blank-paper columns here.
    """
    out = Collated(spec, list(spec.rows), list(spec.columns), {}, jobs=list(jobs))
    out.selection = {r.label: "val" for r in spec.rows}
    col_keys = _match_keys(spec.columns)
    extras = _extras(jobs, set(_match_keys(spec.rows)) | set(col_keys))
    for job in jobs:
        row = next((r for r in spec.rows if r.match is not None and job.matches(r.match)), None)
        if row is None:
            out.unmatched.append(job)
            continue
        col = next((c for c in out.columns if job.matches(c.match)), None)
        if col is None and any(job.matches(c.match) for c in skip_columns):
            continue
        if col is None:  # a dataset the paper does not have (the embedded benchmarks): a blank-paper column
            try:
                match = {k: job.value(k) for k in col_keys}
            except KeyError:
                out.unmatched.append(job)
                continue
            col = Axis(" / ".join(str(v) for v in match.values()), match)
            out.columns.append(col)
        label, mode = row.label, job.selection
        suffix = [s for s in (extras[id(job)], SELECTION_MARK.get(mode, "" if mode == "val" else mode)) if s]
        if suffix:
            label = f"{row.label} [{'; '.join(suffix)}]"
            if label not in out.selection:
                out.rows.append(Axis(label, row.match))
                out.selection[label] = mode
                out.paper_row[label] = row.label
        cell = out.cells.setdefault((label, col.label), Cell())
        cell.jobs += 1
        if job.results is None or job.results.get("status", "ok") != "ok" or not job.headline:
            continue
        cell.seeds.append(job.seed)
        for m in spec.metrics:
            cell.values.setdefault(m, []).append(job.headline.get(m))
    if out.unmatched:
        log.warning(f"{spec.id}: {len(out.unmatched)} job(s) match no row/column of the table: "
                    + ", ".join(str(j.dir.name) for j in out.unmatched[:5]))
    return out
