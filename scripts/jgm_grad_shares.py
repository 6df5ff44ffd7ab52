"""Each term's share of JGM's G (and E) gradient norm, at the start of training and mid-training (issue 17).

    OMP_NUM_THREADS=1 python scripts/jgm_grad_shares.py                  # both sizes, sum/mean x bce, sum/mean x mse
    python scripts/jgm_grad_shares.py --sizes embedded --settings sum-bce mean-bce

For each size and setting, one real JGM run (``method=jgm``, full model) on the embedded benchmark trains its dev
phase with ``zsl_lightning.methods.jgm_shares.GradShareProbe``, which measures the shares on the first batch of
epoch 0 (after the categorizer's pre-training) and of the middle epoch. Sizes:

* ``embedded``: ``data=synthetic`` as shipped (128-d features, 32-d attributes) with its preset (d_z 32,
  256-unit hidden layers, 30 epochs → mid = epoch 15);
* ``cub``: the synthetic generator at CUB's shapes (2,048-d features, 312-d attributes, 150 classes with 100
  seen / 50 unseen, 60 images each) with CUB's preset (``preset=jgm_cub``: d_z 512) and the paper's networks
  (1,000 / 1,024 hidden units); ``--cub-epochs`` (default 2: an epoch there takes minutes on a CPU) sets its
  budget, mid = half of it.

Prints a markdown table (share of the sum of the per-term gradient norms; the shares of one network add to 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"sum-bce": ("sum", "bce"), "mean-bce": ("mean", "bce"), "sum-mse": ("sum", "mse"),
            "mean-mse": ("mean", "mse")}


def size_overrides(size: str, cub_epochs: int) -> tuple[list[str], int]:
    """Hydra overrides of a size and the 0-based mid epoch."""
    if size == "embedded":
        return ["data=synthetic"], 15
    gen = "data.generator"
    return ["data=synthetic", "preset=jgm_cub", f"method.epochs={cub_epochs}", f"{gen}.feature_dim=2048",
            f"{gen}.attribute_dim=312", f"{gen}.num_seen=100", f"{gen}.num_val=20", f"{gen}.num_unseen=50",
            f"{gen}.hidden_dim=256", f"{gen}.latent_dim=16"], cub_epochs // 2


def measure(size: str, setting: str, cub_epochs: int, seed: int, work: Path, variant: str = "jgm_full") -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from zsl_lightning.pipeline import run

    reduction, recon = SETTINGS[setting]
    extra, mid = size_overrides(size, cub_epochs)
    out = work / f"{size}-{setting}-{variant}"
    probe = out / "shares.json"
    overrides = ["method=jgm", f"variant={variant}", *extra, f"method.recon_reduction={reduction}", f"method.recon_loss={recon}",
                 f"seed={seed}", "eval.dev_only=true", "eval.every=1000", "logger=csv", "callbacks=none",
                 "print_config=false", "+callbacks.probe._target_=zsl_lightning.methods.jgm_shares.GradShareProbe",
                 f"+callbacks.probe.epochs=[0,{mid}]", f"+callbacks.probe.path={probe}"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.method.epochs = mid + 1  # nothing after the mid-training probe is needed
    run(cfg)
    found = json.loads(probe.read_text())
    return {"start": found["0"], "mid": found[str(mid)], "mid_epoch": mid}


def table(rows: list[tuple[str, str, str, dict]]) -> str:
    head = ("| size | variant | L_recon | when | G: L_recon | G: α L_G | G: β L_percept | E: L_KL | E: L_recon | "
            "E: β L_percept |\n|" + " --- |" * 10)
    lines = [head]
    for size, variant, setting, res in rows:
        for when in ("start", "mid"):
            g, e = res[when]["G"], res[when].get("E", {})
            label = "epoch 0" if when == "start" else f"epoch {res['mid_epoch']}"
            cells = [g.get("recon"), g.get("gan"), g.get("percept"), e.get("kl"), e.get("recon"), e.get("percept")]
            lines.append(f"| {size} | {variant} | {setting} | {label} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3f}" if v >= 1e-3 else f"{v:.1e}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["embedded", "cub"], choices=["embedded", "cub"])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--variants", nargs="+", default=["jgm_full"],
                    help="Table 3 variants (conf/variant/jgm_*.yaml) to measure")
    ap.add_argument("--cub-epochs", type=int, default=2, help="CUB-shape budget; mid = half of it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the raw shares here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for variant in args.variants:
                for setting in args.settings:
                    print(f"measuring {size} {variant} {setting}", file=sys.stderr)
                    res = measure(size, setting, args.cub_epochs, args.seed, Path(tmp), variant)
                    rows.append((size, variant, setting, res))
    if args.json:
        args.json.write_text(json.dumps([{"size": s, "variant": v, "setting": t, **r} for s, v, t, r in rows], indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
