"""Gao et al. Fig. 3 from a multirun: accuracy vs the number of generated unseen features.

    python train.py -m experiment=jgm_fig3 ...            # one job per (data, k)
    python sweep/plot_fig3.py outputs/jgm_fig3/multiruns/<date> [--out fig3.png] [--wandb]

Reads every job's results.json and config_resolved.yaml; x = k x (number of real unseen test features),
the number of generated features the run used; y = ZSL T1 and GZSL H (test numbers at the epochs the
run's selection chose — see each results.json). Writes a PNG; with --wandb also logs it to a W&B run
(offline unless credentials are configured).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


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


def plot(series: dict[str, list[tuple[float, dict]]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, metric, title in ((axes[0], "zsl_t1", "ZSL top-1 (%)"), (axes[1], "gzsl_H", "GZSL H (%)")):
        for data, points in series.items():
            xs = [n for n, h in points if metric in h]
            ys = [h[metric] for n, h in points if metric in h]
            ax.plot(xs, ys, marker="o", label=data)
        ax.set_xscale("log")
        ax.set_xlabel("number of generated unseen features")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Accuracy vs number of generated features (Gao et al. Fig. 3)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def log_to_wandb(png: Path, series) -> None:
    import os

    os.environ.setdefault("WANDB_MODE", "offline" if not os.environ.get("WANDB_API_KEY") else "online")
    import wandb

    run = wandb.init(project="zsl-lightning", job_type="fig3", dir=str(png.parent))
    run.log({"fig3": wandb.Image(str(png))})
    run.finish()


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
        log_to_wandb(png, series)
    return 0


if __name__ == "__main__":
    sys.exit(main())
