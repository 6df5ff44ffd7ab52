"""Liu et al. Fig. 6 from a multirun: GBE-MLZSL mAP against the number of groups n and the loss weight λ.

    python train.py -m experiment=gbe_fig6 ...                      # one job per (n, λ)
    python sweep/plot_fig6.py outputs/gbe_fig6/multiruns/<date> [--out fig6.png] [--lam 0.3] [--n 25]

Reads every job's results.json (test numbers at the epochs its validation selection chose) and
config_resolved.yaml (``method.model.n_groups``, ``method.loss.lam``). Left panel: ZSL / GZSL mAP against n at
λ = ``--lam``; right panel: against λ at n = ``--n`` (the paper's two curves; missing points are skipped).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def collect(root: Path) -> list[dict]:
    from omegaconf import OmegaConf

    rows = []
    for res in sorted(root.rglob("results.json")):
        cfg_path = res.parent / "config_resolved.yaml"
        if not cfg_path.is_file():
            continue
        cfg, r = OmegaConf.load(cfg_path), json.loads(res.read_text())
        head = r.get("headline") or {}
        if "zsl_mAP" not in head:
            continue
        rows.append({"n": int(cfg.method.model.n_groups), "lam": float(cfg.method.loss.lam),
                     "zsl": float(head["zsl_mAP"]), "gzsl": float(head["gzsl_mAP"])})
    return rows


def plot(rows: list[dict], out: Path, lam: float, n: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, fixed, label in ((axes[0], "n", ("lam", lam), "number of groups n"),
                                  (axes[1], "lam", ("n", n), "λ (Eq. 17)")):
        pts = sorted((r[key], r["zsl"], r["gzsl"]) for r in rows if abs(r[fixed[0]] - fixed[1]) < 1e-9)
        if pts:
            xs, zsl, gzsl = zip(*pts, strict=True)
            ax.plot(xs, zsl, "o-", label="ZSL mAP")
            ax.plot(xs, gzsl, "s-", label="GZSL mAP")
        ax.set_xlabel(label)
        ax.set_ylabel("mAP (%)")
        ax.set_title(f"{fixed[0]} = {fixed[1]:g}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--lam", type=float, default=0.3)
    ap.add_argument("--n", type=int, default=25)
    a = ap.parse_args()
    rows = collect(a.sweep_dir)
    if not rows:
        raise SystemExit(f"no finished GBE job (results.json with zsl_mAP) under {a.sweep_dir}")
    print(plot(rows, a.out or a.sweep_dir / "fig6.png", a.lam, a.n))


if __name__ == "__main__":
    main()
