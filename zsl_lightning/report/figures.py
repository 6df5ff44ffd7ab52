"""Figures of the papers from a multirun: curves and sweeps with error bars over seeds.

A figure spec (``conf/paper/*.yaml``, ``kind: figure``) has, besides ``panels`` (one subplot per panel
metric), a ``figure:`` mapping:

    x: fig3_k                          # a job key (overrides, choices, config_resolved) or ``epoch``
    x_scale: data_info.num_test_unseen # optional: x is multiplied by this config value (Gao et al. Fig. 3)
    x_label: number of generated unseen features
    x_log: true
    series: data                       # one curve per value of this job key
    facet: null                        # optional job key: one row of subplots per value
    history: dev                       # with x = epoch: results.json history.<dev|test>

Each point is the mean over the seeds of one (facet, series, x), with a ± std error bar; runs selected on
the test set (eval.select=test_best) are their own curve, labelled so.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from zsl_lightning.errors import ConfigError
from zsl_lightning.report.collate import SELECTION_MARK, Cell, Job
from zsl_lightning.report.paper import TableSpec


def _key(job: Job, key: str | None):
    if not key:
        return ""
    try:
        v = job.value(key)
    except KeyError:
        return None
    return ",".join(str(x) for x in v) if isinstance(v, tuple) else v


def _xs(job: Job, fig: dict, metric: str) -> list[tuple[float, float]]:
    """(x, y) points of one job."""
    if fig["x"] == "epoch":
        hist = ((job.results or {}).get("history") or {}).get(fig.get("history", "dev")) or []
        return [(float(h["epoch"]), float(h[metric])) for h in hist if h.get(metric) is not None]
    x = _key(job, fig["x"])
    if x is None or job.headline.get(metric) is None:
        return []
    if fig.get("x_scale"):
        scale = _key(job, fig["x_scale"])
        if scale is None:
            return []
        x = float(x) * float(scale)
    return [(float(x), float(job.headline[metric]))]


def figure_points(spec: TableSpec, jobs: list[Job]) -> list[dict]:
    """One record per (facet, series, metric, x): mean, std, n over seeds."""
    fig = spec.figure or {}
    if "x" not in fig:
        raise ConfigError(f"{spec.file}: tables.{spec.id}.figure needs 'x' (a job key or 'epoch')")
    groups: dict[tuple, Cell] = defaultdict(Cell)
    for job in jobs:
        if job.results is None or job.results.get("status", "ok") != "ok":
            continue
        series = str(_key(job, fig.get("series")))
        mode = job.selection
        if mode != "val":
            series += f" [{SELECTION_MARK.get(mode, mode)}]"
        facet = str(_key(job, fig.get("facet")))
        for metric in spec.metrics:
            for x, y in _xs(job, fig, metric):
                cell = groups[(facet, series, metric, x)]
                cell.values.setdefault(metric, []).append(y)
                cell.seeds.append(job.seed)
    points = []
    for (facet, series, metric, x), cell in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0][:3])) + (kv[0][3],)):
        mean, std, n = cell.stat(metric)
        points.append({"figure": spec.id, "facet": facet, "series": series, "metric": metric, "x": x,
                       "mean": mean, "std": std, "n": n})
    return points


def points_csv(points: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["figure", "facet", "series", "metric", "x", "mean", "std", "n"], lineterminator="\n")
    w.writeheader()
    w.writerows(points)
    return buf.getvalue()


def points_markdown(spec: TableSpec, points: list[dict]) -> str:
    lines = [f"## {spec.id}: {spec.title}", "", "| facet | series | metric | x | mean ± std (n) |",
             "| --- | --- | --- | --- | --- |"]
    for p in points:
        lines.append(f"| {p['facet']} | {p['series']} | {p['metric']} | {p['x']:g} | "
                     f"{p['mean']:.{spec.decimals}f} ± {p['std']:.{spec.decimals}f} (n={p['n']}) |")
    if not points:
        lines.append("| missing | | | | no finished job |")
    return "\n".join(lines) + "\n"


def log_x_axis(ax) -> None:
    """A log x axis labelled at 1, 2, 5 x 10^n only: matplotlib's default also labels minor ticks on a ~1-decade
    axis (Gao et al. Fig. 3's k = 1..16 sweep), and those labels run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def draw(spec: TableSpec, points: list[dict]):
    """The figure (matplotlib, Agg): one subplot per panel metric (and per facet value), error bars = std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_cfg = spec.figure or {}
    facets = list(dict.fromkeys(p["facet"] for p in points)) or [""]
    cols = [(panel, m) for panel in spec.panels for m in panel.metrics]
    fig, axes = plt.subplots(len(facets), len(cols), figsize=(4.5 * len(cols), 3.6 * len(facets)), squeeze=False)
    for i, facet in enumerate(facets):
        for j, (panel, metric) in enumerate(cols):
            ax = axes[i][j]
            mine = [p for p in points if p["facet"] == facet and p["metric"] == metric]
            for series in dict.fromkeys(p["series"] for p in mine):
                pts = sorted((p["x"], p["mean"], p["std"]) for p in mine if p["series"] == series)
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                            capsize=3, label=series)
            if fig_cfg.get("x_log"):
                log_x_axis(ax)
            ax.set_xlabel(str(fig_cfg.get("x_label") or fig_cfg["x"]))
            ax.set_ylabel(panel.title if len(panel.metrics) == 1 else metric)
            if facet not in ("", "None"):
                ax.set_title(facet)
            ax.grid(alpha=0.3)
            if mine:
                ax.legend(fontsize=7)
    fig.suptitle(f"{spec.title} (mean ± std over seeds)")
    fig.tight_layout()
    return fig


def write_figure(spec: TableSpec, points: list[dict], out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = draw(spec, points)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
