"""Cost of ZeroNAS (Yan et al. 2021) around f-CLSWGAN: seconds per search epoch and per retrain epoch.

    python benchmarks/bench_zeronas.py                           # embedded- and CUB-sized, auto device
    python benchmarks/bench_zeronas.py --sizes cub --iters 3 --device cpu

Data are random tensors with the shapes of a run (synthetic data is fine for timing):

* ``embedded``: the embedded benchmark (conf/data/synthetic.yaml): 128-d features, 32-d attributes, the dev
  split's 2,432 training rows for the search and 2,432 rows for the retrain epoch; the cells of
  conf/preset/zeronas_synthetic.yaml (G [32, 64, 64, 128], D [128, 64, 64, 32]), FIX = the preset's
  512-wide MLPs;
* ``cub``: CUB's shapes: 2,048-d features, 312-d attributes, the dev split's 5,875 training rows for the
  search, 7,057 trainval rows for the retrain epoch; Sec. 4's cells (G [128, 256, 512, 1024], D [1024, 512,
  256, 128]), FIX = f-CLSWGAN's 4,096-wide MLPs.

For each size it times ``--iters`` steps (after one warm-up step), extrapolates to an epoch, and states the
step's efficiency (FLOPs, achieved FLOP/s, share of the dense-matmul peak measured at its GEMM shapes in the
same run; ``common.efficiency``):

* ``search``: one step of Algorithm 1 (``ZeroNASSearch.training_step``: n_critic x {α_D/β_D, θ_D} +
  α_G/β_G + θ_G, 12 Adam updates of the supernets); an epoch is ``zeronas.steps_per_epoch``'s default,
  ``ceil(|weight half| / (64 · 5))`` steps;
* ``retrain``: one f-CLSWGAN generator iteration (5 critic + 1 generator update) of the derived networks
  (the genotype derived from the freshly initialised supernets, top-2 edges: the shape of a real derived
  network, not its exact ops); an epoch is ``ceil(N / 64)`` iterations, as for every WGAN method;
* ``fix``: the same iteration with the hand-crafted MLPs, for comparison.

Evaluations (synthesising features and fitting the final classifier every ``zeronas.eval_every`` /
``eval.every`` epochs) are not included: see benchmarks/bench_clswgan.py for the classifier's cost.
This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import math
import os
from functools import partial

import torch
from common import (  # benchmarks/common.py (run from benchmarks/)
    efficiency,
    random_split,
    size_parser,
    time_step,
)

# name: (search rows, retrain rows, feature dim, attribute dim, seen classes, unseen, widths G, widths D, FIX hidden)
SIZES = {
    "embedded": (2432, 2432, 128, 32, 64, 20, [32, 64, 64, 128], [128, 64, 64, 32], 512),
    "cub": (5875, 7057, 2048, 312, 150, 50, None, None, 4096),
}
BATCH, N_CRITIC = 64, 5


def adam(lr):
    return partial(torch.optim.Adam, lr=lr, betas=(0.5, 0.999))


def model(cls, generator, discriminator, split, d, a, s, u, device, **kw):
    m = cls(generator=generator, discriminator=discriminator, optimizer_g=adam(1e-4), optimizer_d=adam(1e-4),
            feature_dim=d, noise_dim=a, **kw).to(device)
    m.data = split
    m.build_for_split(split)
    m.to(device)
    m.classifier_ready.fill_(True)  # skip the L_CLS classifier's pre-training (not timed)
    m.prepare(split)
    opts = m.configure_optimizers()
    m.optimizer = lambda role: opts[m.optimizer_roles.index(role)]
    m.manual_backward = lambda loss: loss.backward()
    m.log_losses = lambda *args, **kwargs: None
    return m


def seconds_per_step(m, split, iters, device):
    """Seconds per training step and its efficiency (``common.efficiency``: FLOPs, share of the matmul peak)."""
    from zsl_lightning.data.samplers import RandomBatches

    plan = RandomBatches(BATCH, N_CRITIC).sample(split.train_y.cpu(), torch.Generator().manual_seed(0)).to(device)

    def step(i=0):
        idx = plan[i % len(plan)]
        m.training_step({"x": split.train_x[idx], "target": split.train_y[idx]}, i)

    per_step = time_step(step, iters, device)
    return per_step, efficiency(step, per_step, device)


def bench(name, iters, device) -> dict:
    from zsl_lightning.methods.clswgan import CLSWGAN
    from zsl_lightning.methods.zeronas import derive_network, search_class
    from zsl_lightning.nn.mlp import MLP
    from zsl_lightning.nn.nas import SearchedNetwork, SearchNetwork

    n_search, n_retrain, d, a, s, u, wg, wd, hidden = SIZES[name]
    out = {}
    split = random_split(n_search, d, a, s, u, device)
    torch.manual_seed(0)
    gs = SearchNetwork("generator", [a, a], d, wg, "relu")
    ds = SearchNetwork("discriminator", [d, a], 1, wd)
    m = model(search_class(CLSWGAN), gs, ds, split, d, a, s, u, device, optimizer_arch=adam(3e-4))
    n_weight = n_search - round(0.5 * n_search)
    steps = math.ceil(n_weight / (BATCH * N_CRITIC))
    out["search"] = (*seconds_per_step(m, split, iters, device), steps)
    geno_g, geno_d = derive_network(gs), derive_network(ds)
    del m

    split = random_split(n_retrain, d, a, s, u, device)
    iters_per_epoch = math.ceil(n_retrain / BATCH)
    m = model(CLSWGAN, SearchedNetwork(geno_g, out_activation="relu"), SearchedNetwork(geno_d), split, d, a, s, u,
              device)
    out["retrain"] = (*seconds_per_step(m, split, iters, device), iters_per_epoch)
    m = model(CLSWGAN, MLP([a, a], [hidden], d, out_activation="relu"), MLP([d, a], [hidden], 1), split, d, a, s,
              u, device)
    out["fix"] = (*seconds_per_step(m, split, iters, device), iters_per_epoch)
    return out


def main():
    ap = size_parser(__doc__, SIZES, ["embedded", "cub"], "steps timed per phase (extrapolated to an epoch)")
    args = ap.parse_args()
    device = torch.device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} load(1 min)={load:.1f}")
    for name in args.sizes:
        for phase, (per_step, eff, steps) in bench(name, args.iters, device).items():
            rows = BATCH * N_CRITIC * (2 if phase == "search" else 1)  # real rows read per step
            print(f"[{name}] {phase:8s} {per_step:8.3f} s/step x {steps:4d} steps = {per_step * steps:8.1f} s/epoch"
                  f"  {rows / per_step:9.0f} rows/s")
            print(f"[{name}] {phase:8s} {eff.line('%-of-peak')}")


if __name__ == "__main__":
    main()
