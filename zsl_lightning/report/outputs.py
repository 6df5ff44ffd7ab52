"""Collate multirun directories into files, and the Hydra callback that does it when a multirun ends.

For each table ``<id>`` the output directory gets ``<id>/table.md``, ``table.csv``, ``table.tex``; for each
figure ``<id>/figure.png``, ``points.csv`` and ``table.md`` (the points as a table); for ``kind: images`` the
jobs' own pictures and an index ``table.md`` / ``table.csv``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from zsl_lightning.errors import ConfigError
from zsl_lightning.report import figures, images, render
from zsl_lightning.report.collate import collate, experiment_of, read_jobs
from zsl_lightning.report.paper import TableSpec, get_table, load_papers, tables_for_experiment

log = logging.getLogger(__name__)


def guess_tables(jobs, specs: dict[str, TableSpec]) -> list[TableSpec]:
    exp = experiment_of(jobs)
    found = tables_for_experiment(exp, specs)
    if not found:
        raise ConfigError(f"no table in conf/paper/*.yaml lists experiment '{exp}' under 'experiments'; "
                          f"name one with --table (known: {sorted(specs)})")
    return found


def collate_dirs(roots: list[Path], out: Path, table_ids: list[str] | None = None,
                 specs: dict[str, TableSpec] | None = None) -> dict[str, list[Path]]:
    """Write the tables / figures of the jobs under ``roots`` into ``out``; returns the files per id."""
    specs = specs if specs is not None else load_papers()
    jobs = read_jobs(*roots)
    chosen = [get_table(t, specs) for t in table_ids] if table_ids else guess_tables(jobs, specs)
    written: dict[str, list[Path]] = {}
    for spec in chosen:
        d = Path(out) / spec.id
        d.mkdir(parents=True, exist_ok=True)
        if spec.kind == "images":
            files = images.collect_images(spec, jobs, d)
        elif spec.kind == "figure":
            points = figures.figure_points(spec, jobs)
            (d / "points.csv").write_text(figures.points_csv(points))
            (d / "table.md").write_text(figures.points_markdown(spec, points))
            files = [d / "table.md", d / "points.csv", figures.write_figure(spec, points, d / "figure.png")]
        else:
            others = tuple(c for o in specs.values() if o is not spec and set(o.experiments) & set(spec.experiments)
                           for c in o.columns)
            c = collate(spec, jobs, others)
            (d / "table.md").write_text(render.markdown(c))
            (d / "table.csv").write_text(render.to_csv(c))
            (d / "table.tex").write_text(render.latex(c))
            files = [d / "table.md", d / "table.csv", d / "table.tex"]
        written[spec.id] = files
    return written


def wandb_logger_config(config: DictConfig) -> DictConfig | None:
    """The W&B entry of a sweep's ``logger:`` config, if there is one."""
    loggers = config.get("logger") or {}
    for _, lcfg in loggers.items():
        if isinstance(lcfg, DictConfig) and "Wandb" in str(lcfg.get("_target_", "")):
            return lcfg
    return None


def log_summary_to_wandb(written: dict[str, list[Path]], project: str, group: str | None, run_dir: Path) -> None:
    """One W&B run (``job_type=paper_tables``) with each collated CSV as a ``wandb.Table`` and each PNG.

    Offline unless credentials are configured."""
    import csv

    from zsl_lightning.utils.loggers import wandb_credentials

    if "WANDB_MODE" not in os.environ and not wandb_credentials():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    run = wandb.init(project=project, group=group, job_type="paper_tables", name=f"{group or 'multirun'}-summary",
                     dir=str(run_dir), reinit=True)
    try:
        payload = {}
        for tid, files in written.items():
            for f in files:
                if f.suffix == ".csv":
                    with open(f, newline="") as fh:
                        rows = list(csv.reader(fh))
                    payload[f"{tid}/{f.stem}"] = wandb.Table(columns=rows[0], data=rows[1:])
                elif f.suffix == ".png":
                    payload[f"{tid}/{f.stem}"] = wandb.Image(str(f))
        run.log(payload)
    finally:
        run.finish()


class PaperTables(Callback):
    """Hydra callback: when a multirun ends, collate its jobs into the paper's tables / figures.

    Registered in every ``conf/experiment/*.yaml`` (``hydra.callbacks.paper_tables``). Writes into
    ``<hydra.sweep.dir>/<subdir>``; with a W&B logger in the sweep's config (and ``wandb`` importable) also logs
    one summary run in the jobs' W&B group. A failure to collate is logged, never raised: the jobs' own
    results stay the record.

    Args:
        tables: table ids (``null``: the tables that list the sweep's experiment).
        subdir: output folder inside the sweep directory.
        wandb: ``null``: follow the logger config; ``true`` / ``false``: always / never log.
    """

    def __init__(self, tables: list[str] | None = None, subdir: str = "paper_tables", wandb: bool | None = None):
        self.tables = list(tables) if tables else None
        self.subdir, self.wandb = str(subdir), wandb
        self.written: dict[str, list[Path]] = {}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        try:
            self.written = collate_dirs([root], root / self.subdir, self.tables)
        except Exception as e:  # noqa: BLE001 (a report must not turn a finished sweep into a failure)
            log.error(f"paper tables: could not collate {root}: {type(e).__name__}: {e}")
            return
        for tid, files in self.written.items():
            log.info(f"paper tables: {tid} -> {files[0].parent}")
        lcfg = wandb_logger_config(config)
        if self.wandb is False or (self.wandb is None and lcfg is None):
            return
        try:
            import wandb  # noqa: F401
        except ImportError:
            log.warning("paper tables: wandb is not installed; the summary run is not logged")
            return
        project = str((lcfg.get("project") if lcfg is not None else None) or "zsl-lightning")
        # the group the pipeline gives the jobs of this multirun (zsl_lightning.utils.loggers.multirun_group)
        group = f"{config.hydra.job.name}-{root.name}"
        try:
            log_summary_to_wandb(self.written, project, group, root / self.subdir)
        except Exception as e:  # noqa: BLE001 (the files are written; W&B is a copy)
            log.error(f"paper tables: the W&B summary run failed: {type(e).__name__}: {e}")
