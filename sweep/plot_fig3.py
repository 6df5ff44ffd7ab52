"""Gao et al. Fig. 3 from a multirun: accuracy vs the number of generated unseen features.

    python train.py -m experiment=jgm_fig3 ...            # one job per (data, k); paper_tables/jgm.fig3/figure.png
    python sweep/plot_fig3.py outputs/jgm_fig3/multiruns/<date> [--out fig3.png] [--wandb]   # (re)draw it

One seed, no error bars. The multirun itself draws the figure with error bars over seeds
(``zsl_lightning.report``, callback ``PaperTables``: <sweep dir>/paper_tables/jgm.fig3/figure.png);
:class:`Fig3Plot` remains a callback one can register under ``hydra.callbacks`` for this single-seed PNG.

Reads every job's results.json and config_resolved.yaml; x = k x (number of real unseen test features),
the number of generated features the run used; y = ZSL T1 and GZSL H (test numbers at the epochs the
run's selection chose — see each results.json). Writes a PNG; with --wandb (or, for the callback, when
the sweep's logger config has a W&B logger) also logs it to a W&B run (offline unless credentials are
configured).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from zsl_lightning.report.outputs import wandb_logger_config

log = logging.getLogger(__name__)


def collect(root: Path) -> dict[str, list[tuple[float, dict]]]:
    import yaml

    series: dict[str, list[tuple[float, dict]]] = defaultdict(list)
    for res_file in sorted(root.rglob("results.json")):
        cfg_file = res_file.parent / "config_resolved.yaml"
        if not cfg_file.is_file():
            continue
        res = json.loads(res_file.read_text())
        cfg = yaml.safe_load(cfg_file.read_text())
        mult = (cfg.get("method") or {}).get("syn_multiplier") or {}
        k = mult.get("zsl")
        if k is None or not res.get("headline"):
            continue
        n_generated = float(k) * int(cfg["data_info"]["num_test_unseen"])
        series[res["data"]].append((n_generated, res["headline"]))
    return {d: sorted(v, key=lambda t: t[0]) for d, v in series.items()}


def draw(series: dict[str, list[tuple[float, dict]]]):
    """The figure (matplotlib, Agg): ZSL T1 and GZSL H against the number of generated features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zsl_lightning.report.figures import log_x_axis

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, metric, title in ((axes[0], "zsl_t1", "ZSL top-1 (%)"), (axes[1], "gzsl_H", "GZSL H (%)")):
        for data, points in series.items():
            xs = [n for n, h in points if metric in h]
            ys = [h[metric] for n, h in points if metric in h]
            ax.plot(xs, ys, marker="o", label=data)
        log_x_axis(ax)
        ax.set_xlabel("number of generated unseen features")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Accuracy vs number of generated features (Gao et al. Fig. 3)")
    fig.tight_layout()
    return fig


def plot(series: dict[str, list[tuple[float, dict]]], out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = draw(series)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def log_to_wandb(png: Path, project: str = "zsl-lightning", group: str | None = None) -> None:
    """Log the PNG to a new W&B run (``job_type=fig3``); offline unless credentials are configured."""
    import os

    from zsl_lightning.utils.loggers import wandb_credentials

    if "WANDB_MODE" not in os.environ and not wandb_credentials():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    run = wandb.init(project=project, group=group, job_type="fig3", name="fig3", dir=str(png.parent))
    try:
        run.log({"fig3": wandb.Image(str(png))})
    finally:
        run.finish()


class Fig3Plot(Callback):
    """Hydra callback: when the multirun ends, draw ``<hydra.sweep.dir>/<filename>`` from its jobs.

    Registered in ``conf/experiment/jgm_fig3.yaml`` (``hydra.callbacks.fig3_plot``). The PNG is also logged
    to W&B when the sweep's logger config has a W&B logger and ``wandb`` is importable (offline unless
    credentials are configured), in the W&B group of the sweep's jobs.

    Args:
        filename: PNG name inside the sweep directory.
        wandb: ``null`` (default): follow the logger config; ``true`` / ``false``: always / never log.
    """

    def __init__(self, filename: str = "fig3.png", wandb: bool | None = None):
        self.filename, self.wandb = str(filename), wandb
        self.last_path: Path | None = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        series = collect(root)
        if not series:
            log.warning(f"Fig. 3: no finished jobs with results.json + config_resolved.yaml under {root}; no plot")
            return
        self.last_path = plot(series, root / self.filename)
        log.info(f"Fig. 3: wrote {self.last_path}")
        lcfg = wandb_logger_config(config)
        if self.wandb is False or (self.wandb is None and lcfg is None):
            return
        try:
            import wandb  # noqa: F401
        except ImportError:
            log.warning("Fig. 3: wandb is not installed; the plot is not logged to W&B")
            return
        project = str((lcfg.get("project") if lcfg is not None else None) or "zsl-lightning")
        # the group the pipeline gives the jobs of this multirun (zsl_lightning.utils.loggers.multirun_group)
        group = f"{config.hydra.job.name}-{root.name}"
        log_to_wandb(self.last_path, project=project, group=group)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a multirun directory of experiment=jgm_fig3")
    ap.add_argument("--out", type=Path, default=None, help="PNG path (default: <root>/fig3.png)")
    ap.add_argument("--wandb", action="store_true", help="also log the plot to Weights & Biases")
    args = ap.parse_args(argv)
    series = collect(args.root)
    if not series:
        print(f"no finished jobs with results.json + config_resolved.yaml under {args.root}", file=sys.stderr)
        return 1
    png = plot(series, args.out or args.root / "fig3.png")
    print(f"wrote {png}")
    for data, points in series.items():
        print(data, [(int(n), round(h.get("zsl_t1", float("nan")), 2)) for n, h in points])
    if args.wandb:
        log_to_wandb(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
