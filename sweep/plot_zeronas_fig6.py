"""Yan et al. (ZeroNAS) Fig. 6 from a multirun: ZSL top-1 over the epochs of training and searching.

    python train.py -m experiment=zeronas_fig6 ...     # FIX and NAS per dataset; writes <sweep dir>/zeronas_fig6.png
    python sweep/plot_zeronas_fig6.py outputs/zeronas_fig6/multiruns/<date> [--out fig6.png] [--history dev]

One panel per dataset, three curves as in the paper: the base's training with its hand-crafted networks
(``FIX``: a run of ``method=<base>``), ZeroNAS's search (``NAS search``: results.json ``search.val``, the
supernet evaluated every ``zeronas.eval_every`` search epochs) and the retraining of the derived networks
(``NAS``: a run of ``method=zeronas``). The training curves are results.json ``history.<--history>``:
``dev`` (default) = validation classes of the dev split, the same classes the search curve is measured on;
``test`` = the test phase's evaluations, which are per epoch only with ``eval.select=test_best`` (with the
default ``val`` selection the test phase evaluates at the selected epochs only). The paper's curves are
test accuracy; ours are labelled with what they are.
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

log = logging.getLogger(__name__)

Series = dict[str, dict[str, list[tuple[int, float]]]]  # data -> curve label -> [(epoch, value)]


def curve(history: list[dict], metric: str) -> list[tuple[int, float]]:
    return [(int(h["epoch"]), float(h[metric])) for h in history if h.get(metric) is not None]


def collect(root: Path, metric: str = "zsl_t1", history: str = "dev") -> Series:
    """Every job's curves under ``root`` (finished jobs: results.json with a history)."""
    series: Series = defaultdict(dict)
    for res_file in sorted(root.rglob("results.json")):
        r = json.loads(res_file.read_text())
        data, method = r.get("data"), r.get("method")
        search = r.get("search") or {}
        if method == "zeronas":
            base = search.get("base") or "base"
            if not search.get("skipped") and curve(search.get("val", []), metric):
                series[data][f"NAS search ({base}, val)"] = curve(search["val"], metric)
            label = f"NAS ({base}, {history})"
        else:
            label = f"FIX ({method}, {history})"
        points = curve((r.get("history") or {}).get(history, []), metric)
        if points:
            series[data][label] = points
    return {d: v for d, v in sorted(series.items()) if v}


def draw(series: Series, metric: str = "zsl_t1"):
    """The figure (matplotlib, Agg): one panel per dataset, accuracy against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"FIX": dict(color="tab:red", ls="--"), "NAS search": dict(color="tab:green", ls=":"),
              "NAS": dict(color="tab:blue", ls="-")}
    fig, axes = plt.subplots(1, len(series), figsize=(3.6 * len(series), 3.4), squeeze=False)
    for ax, (data, curves) in zip(axes[0], series.items(), strict=True):
        for label, points in curves.items():
            style = styles[label.split(" (")[0]]
            ax.plot([e for e, _ in points], [v for _, v in points], marker=".", label=label, **style)
        ax.set_title(str(data))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Accuracy during training and searching (Yan et al. Fig. 6)")
    fig.tight_layout()
    return fig


def plot(series: Series, out: Path, metric: str = "zsl_t1") -> Path:
    import matplotlib.pyplot as plt

    fig = draw(series, metric)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


class Fig6Plot(Callback):
    """Hydra callback: when the multirun ends, draw ``<hydra.sweep.dir>/<filename>`` from its jobs.

    Registered in ``conf/experiment/zeronas_fig6.yaml`` (``hydra.callbacks.zeronas_fig6_plot``).

    Args:
        filename: PNG name inside the sweep directory.
        metric: the per-epoch metric drawn (``zsl_t1``; the search records only its monitor, ``zsl_t1`` with
            ``zeronas.select_task=zsl``).
        history: ``dev`` (validation classes) or ``test`` (module docstring).
    """

    def __init__(self, filename: str = "zeronas_fig6.png", metric: str = "zsl_t1", history: str = "dev"):
        self.filename, self.metric, self.history = str(filename), str(metric), str(history)
        self.last_path: Path | None = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        series = collect(root, self.metric, self.history)
        if not series:
            log.warning(f"ZeroNAS Fig. 6: no finished jobs with a history under {root}; no plot")
            return
        self.last_path = plot(series, root / self.filename, self.metric)
        log.info(f"ZeroNAS Fig. 6: wrote {self.last_path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a multirun directory of experiment=zeronas_fig6")
    ap.add_argument("--out", type=Path, default=None, help="PNG path (default: <root>/zeronas_fig6.png)")
    ap.add_argument("--metric", default="zsl_t1")
    ap.add_argument("--history", default="dev", choices=["dev", "test"])
    args = ap.parse_args(argv)
    series = collect(args.root, args.metric, args.history)
    if not series:
        print(f"no finished jobs with a history under {args.root}", file=sys.stderr)
        return 1
    png = plot(series, args.out or args.root / "zeronas_fig6.png", args.metric)
    print(f"wrote {png}")
    for data, curves in series.items():
        for label, points in curves.items():
            print(data, label, [(e, round(v, 2)) for e, v in points])
    return 0


if __name__ == "__main__":
    sys.exit(main())
