"""How fast VS-Boost trains at the paper's sizes: episode sampling, one training step, one evaluation.

A script, not a test. Random tensors with a real benchmark's shapes (Table 1 of the paper: features
2,048-d, attributes / sentence embeddings, classes, training images, the preset's N-way K-shot
episode and syn_num from ``conf/preset/vs_boost_<data>.yaml``) are bound to the method exactly as in a run (the split lives on the device; batches are
gathered by index), so the numbers measure the method, not file reading. The training step is also stated as efficiency (FLOPs,
achieved FLOP/s, share of the dense-matmul peak at its GEMM shapes in the same run: ``common.efficiency``).

    python benchmarks/vs_boost_speed.py --data cub            # paper-size networks, GPU if present
    python benchmarks/vs_boost_speed.py --data awa2 --steps 3 --width 1024   # quicker on a CPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from common import efficiency, sync  # benchmarks/common.py (the script's folder is on sys.path)
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout's package

CONF = Path(__file__).resolve().parents[1] / "conf"

# Table 1 of the paper: (embedding dim, seen classes, unseen classes, training images, test seen, test unseen)
SHAPES = {
    "apy": (64, 20, 12, 5932, 1483, 7924),  # Table 1 lists 7,924 / 1,483: xlsa17 has 1,483 test-seen images
    "awa2": (85, 40, 10, 23527, 5882, 7913),
    "cub": (1024, 150, 50, 7057, 1764, 2967),
    "flo": (1024, 82, 20, 5631, 1403, 1155),
    "sun": (102, 645, 72, 10320, 2850, 1440),
}


def make_datamodule(data: str, feature_dim: int, seed: int = 0):
    from zsl_lightning.data.base import ZSLDataModule
    from zsl_lightning.data.split import FeatureSplit

    a_dim, n_seen, n_unseen, n_train, n_ts, n_tu = SHAPES[data]
    g = torch.Generator().manual_seed(seed)
    c = n_seen + n_unseen
    seen, unseen = torch.arange(n_seen), torch.arange(n_seen, c)

    def feats(n):
        return torch.rand(n, feature_dim, generator=g)

    split = FeatureSplit(
        name="test", train_x=feats(n_train), train_y=seen[torch.randint(n_seen, (n_train,), generator=g)],
        test_seen_x=feats(n_ts), test_seen_y=seen[torch.randint(n_seen, (n_ts,), generator=g)],
        test_unseen_x=feats(n_tu), test_unseen_y=unseen[torch.randint(n_unseen, (n_tu,), generator=g)],
        class_embeddings=torch.nn.functional.normalize(torch.rand(c, a_dim, generator=g), dim=1),
        seen_classes=seen, unseen_classes=unseen)

    class RandomData(ZSLDataModule):
        def _load(self):
            pass

        @property
        def info(self):
            return {"name": data, "label_mode": "single", "feature_dim": feature_dim, "embedding_dim": a_dim,
                    "attribute_dim": a_dim, "num_classes": c, "num_seen": n_seen, "num_unseen": n_unseen}

        def _build_split(self, name):
            return split

    return RandomData(name=data, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=sorted(SHAPES), default="cub")
    ap.add_argument("--steps", type=int, default=20, help="timed generator iterations")
    ap.add_argument("--width", type=int, default=4096, help="hidden width of G, D and R (paper: 4096)")
    ap.add_argument("--feature-dim", type=int, default=2048)
    ap.add_argument("--syn-num", type=int, default=0, help="synthetic features per unseen class (0: the preset's)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = ap.parse_args()

    from hydra import compose, initialize_config_dir

    from zsl_lightning.context import PhaseContext
    from zsl_lightning.data.samplers import EpisodicBatches
    from zsl_lightning.pipeline import build_method

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    dm = make_datamodule(args.data, args.feature_dim)
    # the benchmark's own preset (conf/preset/vs_boost_<data>.yaml): its episode size and syn_num
    overrides = ["method=vs_boost", f"data={args.data}"]
    if args.syn_num:
        overrides.append(f"eval.syn_num={args.syn_num}")
    if args.width != 4096:
        overrides += [f"method.{net}.hidden=[{args.width}]" for net in ("generator", "discriminator", "regressor")]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.data_info = dm.info
    n_way, k_shot = cfg.method.sampler.n_way, cfg.method.sampler.k_shot
    m = build_method(cfg, PhaseContext(split=dm.split("test"), on_device=dm.device_split))
    dm.use("test", m.batch_plan)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         limit_train_batches=0, accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                         enable_model_summary=False)
    trainer.fit(m, datamodule=dm)  # binds the split on the device and the optimizers
    split = m.data
    n_params = sum(p.numel() for p in m.parameters())
    print(f"VS-Boost on {args.data}-shaped data ({split.num_train} training images, {args.feature_dim}-d features, "
          f"{split.embedding_dim}-d embeddings), {n_way}-way {k_shot}-shot, width {args.width}, "
          f"{n_params / 1e6:.1f}M parameters, device {device}")

    # 1. one epoch's episode plan (on the host, once per epoch)
    plan: EpisodicBatches = m.batch_plan
    labels = split.train_y.cpu()
    t = time.perf_counter()
    idx = plan.sample(labels, torch.Generator().manual_seed(0))
    t_plan = time.perf_counter() - t
    print(f"  episode plan of one epoch: {idx.shape[0]} steps x {idx.shape[1]} episodes x {idx.shape[2]} images "
          f"in {1e3 * t_plan:.1f} ms")
    idx = idx.to(device)

    # 2. training steps (n_critic critic updates + one joint G/E/R/F update each)
    def batch(i):
        b = idx[i % len(idx)]
        return {"x": split.train_x[b], "target": split.train_y[b], "idx": b}

    for i in range(3):
        m.training_step(batch(i), i)
    sync(device)
    t = time.perf_counter()
    for i in range(args.steps):
        m.training_step(batch(i), i)
    sync(device)
    per_step = (time.perf_counter() - t) / args.steps
    print(f"  training step: {1e3 * per_step:.1f} ms ({1 / per_step:.1f} generator iterations/s; "
          f"one epoch = {len(idx)} steps = {len(idx) * per_step:.1f} s)")
    eff = efficiency(lambda: m.training_step(batch(0), 0), per_step, device)
    print(f"  training step {eff.line('%-of-peak')}")

    # 3. one evaluation: synthesis, E on every feature, two softmax classifiers, ZSL + GZSL metrics
    sync(device)
    t = time.perf_counter()
    metrics = m.evaluate(split)
    sync(device)
    print(f"  evaluation (ZSL + GZSL, {m.eval_cfg.syn_num} per unseen class, "
          f"{m.eval_cfg.classifier.epochs} classifier epochs): {time.perf_counter() - t:.2f} s "
          f"(random data: T1 {metrics['zsl_t1']:.1f})")


if __name__ == "__main__":
    main()
