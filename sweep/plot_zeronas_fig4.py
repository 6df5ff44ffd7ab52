"""Yan et al. (ZeroNAS) Fig. 4 from a multirun: t-SNE of real vs synthetic unseen features, FIX vs NAS.

    python train.py experiment=zeronas_fig4 ...            # two jobs (method=clswgan, method=zeronas) -> fig4.png
    python sweep/plot_zeronas_fig4.py <sweep dir> [--out fig4.png] [--method tsne|pca]   # (re)draw it

Each job's ``callbacks.feature_plot`` (``save_features: true``) saves ``plots/features_test.pt``: the real and
synthetic unseen features it drew at the epoch selected on validation (the same classes and real rows in both
jobs: the same seed). This draws one panel per job, side by side, each with its own 2-D embedding as in the
paper: "FIX" for ``method=clswgan``, "NAS" for ``method=zeronas`` (``results.json``'s ``method``).
``conf/experiment/zeronas_fig4.yaml`` registers :class:`ZeroNASFig4Plot` under ``hydra.callbacks``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)
LABELS = {"clswgan": "f-CLSWGAN (FIX)", "zeronas": "f-CLSWGAN + ZeroNAS (NAS)"}


def collect(root: Path) -> list[tuple[str, dict]]:
    """``(method, saved points)`` of every finished job under ``root`` that saved its test-phase points, FIX first."""
    import torch

    found = []
    for res_file in sorted(Path(root).rglob("results.json")):
        pts = sorted(res_file.parent.rglob("features_test.pt"))
        if not pts:
            continue
        method = str(json.loads(res_file.read_text()).get("method"))
        found.append((method, torch.load(pts[0], weights_only=False)))
    order = {m: i for i, m in enumerate(LABELS)}
    return sorted(found, key=lambda t: order.get(t[0], len(order)))


def plot(jobs: list[tuple[str, dict]], out: Path, method: str = "tsne", seed: int = 0) -> Path:
    import torch

    from zsl_lightning.callbacks_features import pyplot, save, scatter_real_fake
    from zsl_lightning.callbacks_plots import embed_2d

    plt = pyplot()
    fig, axes = plt.subplots(1, len(jobs), figsize=(5.5 * len(jobs), 5), squeeze=False)
    for ax, (name, p) in zip(axes[0], jobs, strict=True):
        xy = embed_2d(torch.cat([p["real"], p["fake"]]), method, seed)
        scatter_real_fake(ax, xy, p["real_y"], p["fake_y"], p["class_names"])
        ax.set_title(f"{LABELS.get(name, name)}\nepoch {p['epoch']} ({p['weights']})", fontsize=9)
    axes[0][-1].legend(fontsize=6, loc="best", ncol=2)
    fig.suptitle(f"real (o) vs synthetic (x) unseen features, {method.upper()} (ZeroNAS Fig. 4)", fontsize=10)
    save(fig, out)
    return out


class ZeroNASFig4Plot(Callback):
    """Hydra callback: when the multirun ends, draw ``<hydra.sweep.dir>/<filename>`` from its jobs' saved points."""

    def __init__(self, filename: str = "fig4.png", method: str = "tsne"):
        self.filename, self.method = str(filename), str(method)
        self.last_path: Path | None = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        jobs = collect(root)
        if not jobs:
            log.warning(f"ZeroNAS Fig. 4: no job under {root} saved plots/features_test.pt; no plot")
            return
        self.last_path = plot(jobs, root / self.filename, self.method, int(config.get("seed", 0)))
        log.info(f"ZeroNAS Fig. 4: wrote {self.last_path} ({', '.join(m for m, _ in jobs)})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a multirun directory of experiment=zeronas_fig4")
    ap.add_argument("--out", type=Path, default=None, help="PNG path (default: <root>/fig4.png)")
    ap.add_argument("--method", default="tsne", choices=["tsne", "pca"])
    args = ap.parse_args(argv)
    jobs = collect(args.root)
    if not jobs:
        print(f"no job under {args.root} saved plots/features_test.pt", file=sys.stderr)
        return 1
    print(f"wrote {plot(jobs, args.out or args.root / 'fig4.png', args.method)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
