"""Speed of one f-CLSWGAN epoch and one final-classifier fit on benchmark-sized data.

    python benchmarks/bench_clswgan.py                    # CUB- and AWA2-sized, auto device
    python benchmarks/bench_clswgan.py --sizes cub --iters 20 --device cpu

Data are random tensors with the real shapes (CUB: 7,057 x 2,048 trainval features, 312-d attributes,
150 seen / 50 unseen classes; AWA2: 23,527 x 2,048, 85-d, 40 / 10) and the networks have the paper's
sizes (4,096 hidden). For each size it times

* ``ours``: the framework's training step (`CLSWGAN.training_step` driven through `manual_step`, batches
  gathered on the device by index) — `--iters` generator iterations, extrapolated to one epoch;
* ``host-batches``: the same networks and losses, but each batch assembled on the host and copied into
  pre-allocated device tensors, as the released scripts do;
* the final classifier (25 epochs, batch 300) on real seen + 300 synthetic features per unseen class,
  ours (device-resident, index batches) vs. host-assembled batches.

It prints samples/s and peak memory. This is a benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import resource
import time

import torch
import torch.nn.functional as F
from common import random_split, size_parser, sync  # benchmarks/common.py (run as a script from benchmarks/)

SIZES = {"cub": (7057, 2048, 312, 150, 50), "awa2": (23527, 2048, 85, 40, 10)}


def peak_mem(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB (process RSS)"


def build(n, d, a, s, u, device):
    from zsl_lightning.methods.clswgan import CLSWGAN
    from zsl_lightning.nn.mlp import MLP

    split = random_split(n, d, a, s, u, device)
    m = CLSWGAN(generator=MLP([a, a], [4096], d, out_activation="relu"), discriminator=MLP([d, a], [4096], 1),
                optimizer_g=lambda params: torch.optim.Adam(params, 1e-4, betas=(0.5, 0.999)),
                optimizer_d=lambda params: torch.optim.Adam(params, 1e-4, betas=(0.5, 0.999)),
                feature_dim=d, noise_dim=a)
    m.build_for_split(split)  # the frozen classifier's shape (its pre-training is not what is timed)
    m = m.to(device)
    m.data = split
    return m, split


class _Bare:
    """Drives a LightningModule's manual steps without a Trainer (optimizers of configure_optimizers)."""

    def __init__(self, m):
        self.opts = m.configure_optimizers()
        m.optimizer = lambda role: self.opts[m.optimizer_roles.index(role)]
        m.manual_backward = lambda loss: loss.backward()
        m.log_losses = lambda *a, **k: None


def time_ours(m, split, iters, device):
    from zsl_lightning.data.samplers import RandomBatches

    _Bare(m)
    plan = RandomBatches(64, 5).sample(split.train_y.cpu(), torch.Generator().manual_seed(0)).to(device)
    m.training_step({"x": split.train_x[plan[0]], "target": split.train_y[plan[0]]}, 0)  # warm-up
    sync(device)
    t = time.perf_counter()
    for i in range(iters):
        idx = plan[i % len(plan)]
        m.training_step({"x": split.train_x[idx], "target": split.train_y[idx]}, i)
    sync(device)
    return (time.perf_counter() - t) / iters, len(plan)


def time_host_batches(m, split, iters, device):
    """Released-script style: host tensors, a fresh randperm per batch, copy_ into device buffers."""
    from zsl_lightning.losses import gradient_penalty

    x_host, y_host, att_host = split.train_x.cpu(), split.train_y.cpu(), split.class_embeddings.cpu()
    buf_x = torch.empty(64, x_host.shape[1], device=device)
    buf_a = torch.empty(64, att_host.shape[1], device=device)
    opt_d = torch.optim.Adam(m.discriminator.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(m.generator.parameters(), 1e-4, betas=(0.5, 0.999))

    def one():
        for _ in range(5):
            idx = torch.randperm(len(x_host))[:64]
            buf_x.copy_(x_host[idx])
            buf_a.copy_(att_host[y_host[idx]])
            fake = m.generator(torch.randn(64, buf_a.shape[1], device=device), buf_a)
            loss = (m.discriminator(fake.detach(), buf_a).mean() - m.discriminator(buf_x, buf_a).mean()
                    + 10 * gradient_penalty(m.discriminator, buf_x, fake.detach(), buf_a))
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        fake = m.generator(torch.randn(64, buf_a.shape[1], device=device), buf_a)
        loss = -m.discriminator(fake, buf_a).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()

    one()
    sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        one()
    sync(device)
    return (time.perf_counter() - t) / iters


def time_classifier(split, u, device, host: bool):
    from zsl_lightning.eval.classifier import fit_softmax_classifier

    syn = torch.rand(300 * u, split.train_x.shape[1], device=device)
    x = torch.cat([split.train_x, syn])
    y = torch.cat([split.train_y, torch.arange(split.class_embeddings.shape[0] - u,
                                               split.class_embeddings.shape[0], device=device).repeat_interleave(300)])
    c = split.class_embeddings.shape[0]
    sync(device)
    t = time.perf_counter()
    if not host:
        fit_softmax_classifier(x, y, c, epochs=25, batch_size=300, generator=torch.Generator().manual_seed(0))
    else:
        xh, yh = x.cpu(), y.cpu()
        lin = torch.nn.Linear(x.shape[1], c).to(device)
        opt = torch.optim.Adam(lin.parameters(), 1e-3, betas=(0.5, 0.999))
        for _ in range(25):
            perm = torch.randperm(len(xh))
            for i in range(0, len(xh), 300):
                idx = perm[i:i + 300]
                bx, by = xh[idx].to(device), yh[idx].to(device)
                loss = F.cross_entropy(lin(bx), by)
                opt.zero_grad()
                loss.backward()
                opt.step()
    sync(device)
    return time.perf_counter() - t, len(x) * 25


def main():
    ap = size_parser(__doc__, SIZES, ["cub", "awa2"], "generator iterations timed (extrapolated to an epoch)")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    for name in args.sizes:
        n, d, a, s, u = SIZES[name]
        m, split = build(n, d, a, s, u, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        per_iter, steps = time_ours(m, split, args.iters, device)
        host = time_host_batches(m, split, args.iters, device)
        imgs = 64 * 5  # real images consumed per generator iteration
        print(f"[{name}] GAN epoch ({steps} generator iterations, n_critic 5, batch 64):")
        print(f"    ours          {per_iter * steps:8.1f} s/epoch  {imgs / per_iter:9.0f} samples/s")
        print(f"    host-batches  {host * steps:8.1f} s/epoch  {imgs / host:9.0f} samples/s")
        t_ours, seen = time_classifier(split, u, device, host=False)
        t_host, _ = time_classifier(split, u, device, host=True)
        print(f"[{name}] final classifier (25 epochs, {seen // 25} features, batch 300):")
        print(f"    ours          {t_ours:8.1f} s        {seen / t_ours:9.0f} samples/s")
        print(f"    host-batches  {t_host:8.1f} s        {seen / t_host:9.0f} samples/s")
        print(f"[{name}] peak memory {peak_mem(device)}")


if __name__ == "__main__":
    main()
