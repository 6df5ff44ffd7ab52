"""Speed of one f-CLSWGAN (f-VAEGAN, JGM) epoch and one final-classifier fit on benchmark-sized data.

    python benchmarks/bench_clswgan.py                    # CUB- and AWA2-sized, auto device
    python benchmarks/bench_clswgan.py --sizes cub --iters 20 --device cpu
    python benchmarks/bench_clswgan.py --method vaegan --sizes cub --precision bf16 --compile
    python benchmarks/bench_clswgan.py --method clf --sizes nuswide --precision bf16   # paper-size CLF step

Data are random tensors with the real shapes (CUB: 7,057 x 2,048 trainval features, 312-d attributes,
150 seen / 50 unseen classes; AWA2: 23,527 x 2,048, 85-d, 40 / 10) and the networks have the paper's
sizes (4,096 hidden). For each size it times

* ``ours``: the framework's training step (`CLSWGAN.training_step` driven through `manual_step`, batches
  gathered on the device by index) — `--iters` generator iterations, extrapolated to one epoch;
* ``host-batches``: the same networks and losses, but each batch assembled on the host and copied into
  pre-allocated device tensors, as the released scripts do;
* the final classifier (25 epochs, batch 300) on real seen + 300 synthetic features per unseen class,
  ours (device-resident, index batches) vs. host-assembled batches.

``--method vaegan`` / ``jgm`` time those methods' training steps instead (built from their configs,
``conf/method/<name>.yaml`` + the size's preset, as ``train.py`` builds them); ``--method clf`` times one update of
Gupta et al.'s paper-size CLF generator (``nn.fusion.CLF``, NUS-WIDE shapes: 925 training labels, 300-d GloVe,
4,096-d features, batch 64; BCE to the features, as ``bench_multilabel.py --clf``). The released-code
comparison (``host-batches``) and the classifier exist for f-CLSWGAN; its ratio to ``ours`` is printed.

Every step is also stated as efficiency: FLOPs per step, achieved FLOP/s and the share of the dense-matmul
peak measured in the same run at the step's GEMM shapes (``common.efficiency``). ``--precision`` fp32 | tf32 |
bf16 (autocast), ``--compile`` (the networks through ``torch.compile``, as ``trainer.compile=true``),
``--width`` (hidden width; paper 4,096) and ``--sizes tiny`` make quick CPU checks; ``--json`` writes the
figures (samples/s, %-of-peak, peak memory) for ``benchmarks/gpu_check.sh``.

It prints samples/s and peak memory. This is a benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from common import efficiency, random_split, size_parser, sync, time_step  # noqa: E402  benchmarks/common.py

CONF = Path(__file__).resolve().parents[1] / "conf"
# name: (training rows, feature dim, attribute dim, seen classes (labels), unseen); nuswide: --method clf
SIZES = {"cub": (7057, 2048, 312, 150, 50), "awa2": (23527, 2048, 85, 40, 10), "tiny": (1024, 256, 32, 40, 10),
         "nuswide": (161789, 4096, 300, 925, 81)}
METHODS = ("clswgan", "vaegan", "jgm", "clf")


def peak_mem(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB (process RSS)"


def peak_mem_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def precision_context(precision: str, device: torch.device):
    """fp32 (no TF32), tf32 (TF32 matmuls on CUDA; same as fp32 on a CPU) or bf16 (autocast)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build(n, d, a, s, u, device, width=4096):
    from zsl_lightning.methods.clswgan import CLSWGAN
    from zsl_lightning.nn.mlp import MLP

    split = random_split(n, d, a, s, u, device)
    m = CLSWGAN(generator=MLP([a, a], [width], d, out_activation="relu"), discriminator=MLP([d, a], [width], 1),
                optimizer_g=lambda params: torch.optim.Adam(params, 1e-4, betas=(0.5, 0.999)),
                optimizer_d=lambda params: torch.optim.Adam(params, 1e-4, betas=(0.5, 0.999)),
                feature_dim=d, noise_dim=a)
    m.build_for_split(split)  # the frozen classifier's shape (its pre-training is not what is timed)
    m = m.to(device)
    m.data = split
    return m, split


def build_configured(method, size, n, d, a, s, u, device, width=4096):
    """f-VAEGAN / JGM built from their configs (``method=<method>``, the size's preset) on a random split."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from zsl_lightning.context import PhaseContext
    from zsl_lightning.phases import build_method

    split = random_split(n, d, a, s, u, device)
    data = size if size in ("cub", "awa2") else "synthetic"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"method={method}", f"data={data}"])
    with open_dict(cfg):
        cfg.data_info = {"name": size, "label_mode": "single", "feature_dim": d, "embedding_dim": a,
                         "attribute_dim": a, "num_classes": s + u, "num_seen": s, "num_unseen": u}
        if width != 4096:
            for net in ("generator", "discriminator", "encoder"):
                if "hidden" in cfg.method.get(net, {}):
                    cfg.method[net].hidden = [width] * len(cfg.method[net].hidden)
    m = build_method(cfg, PhaseContext(split=split.to("cpu")))
    m.setup("fit")  # networks that depend on the split (JGM's categorizer)
    for flag in ("classifier_ready", "categorizer_ready"):  # their pre-training is not what is timed
        if hasattr(m, flag):
            getattr(m, flag).fill_(True)
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


def gan_step(m, split, device, precision):
    """One training step of ``m`` on batches gathered on the device by index; returns ``(step(i), plan)``."""
    from zsl_lightning.data.samplers import RandomBatches

    _Bare(m)
    sampler = m.batch_plan or RandomBatches(64, 5)
    plan = sampler.sample(split.train_y.cpu(), torch.Generator().manual_seed(0)).to(device)

    def step(i=0):
        idx = plan[i % len(plan)]
        with precision_context(precision, device):
            m.training_step({"x": split.train_x[idx], "target": split.train_y[idx], "idx": idx}, i)

    return step, plan


def clf_step(d, a, labels, device, precision, width=4096):
    """One update of the CLF generator (Gupta et al. Eqs. 3-5) at NUS-WIDE's shapes, batch 64."""
    from zsl_lightning.nn.fusion import CLF

    g = torch.Generator().manual_seed(0)
    net = CLF(a, a, d, hidden=(width,), ffn_hidden=2 * width).to(device)
    emb = torch.randn(labels, a, generator=g).to(device)
    y = (torch.rand(64, labels, generator=g) < 3 / labels).float().to(device)
    x = torch.rand(64, d, generator=g).to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-4)

    def step(i=0):
        with precision_context(precision, device):
            out = net(torch.randn(64, a, device=device), y, emb)
            loss = F.binary_cross_entropy(out.float(), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, net


def time_host_batches(m, split, iters, device, precision="fp32"):
    """Released-script style: host tensors, a fresh randperm per batch, copy_ into device buffers."""
    from zsl_lightning.losses import gradient_penalty

    x_host, y_host, att_host = split.train_x.cpu(), split.train_y.cpu(), split.class_embeddings.cpu()
    buf_x = torch.empty(64, x_host.shape[1], device=device)
    buf_a = torch.empty(64, att_host.shape[1], device=device)
    opt_d = torch.optim.Adam(m.discriminator.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(m.generator.parameters(), 1e-4, betas=(0.5, 0.999))

    def one():
        with precision_context(precision, device):
            host_iteration()

    def host_iteration():
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


def bench(method, name, a, device) -> dict:
    """Time one (method, size); print its lines and return its figures."""
    from zsl_lightning.utils.compile import compile_networks

    n, d, att, s, u = SIZES[name]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if method == "clf":
        step, net = clf_step(d, att, s, device, a.precision, a.width)
        rows, what = 64, "CLF generator update (batch 64)"
    else:
        m, split = (build(n, d, att, s, u, device, a.width) if method == "clswgan"
                    else build_configured(method, name, n, d, att, s, u, device, a.width))
        step, plan = gan_step(m, split, device, a.precision)
        net, rows = m, plan.shape[1] * plan.shape[2]  # real rows read per generator iteration
        what = f"{method} training step ({len(plan)} per epoch, {plan.shape[1]} x batch {plan.shape[2]})"
    step(0)  # warm-up before counting (allocations, lazy state)
    eff = efficiency(step, 1.0, device)  # FLOPs and peak in eager mode (the FLOPs do not change with compile)
    if a.compile:
        torch._dynamo.reset()  # each run compiles afresh (and does not count against the last one's cache)
        if method == "clf":
            net.compile()
        else:
            compile_networks(net, "default")
    per_step = time_step(step, a.iters, device, warmup=3 if a.compile else 1)
    eff = dataclasses.replace(eff, seconds=per_step)
    tag = f"[{name}] {method} {a.precision}{' compiled' if a.compile else ''}"
    print(f"{tag} {what}: {per_step * 1e3:.1f} ms/step, {rows / per_step:,.0f} samples/s")
    print(f"{tag} {eff.line('%-of-peak')}")
    rec = {"method": method, "size": name, "precision": a.precision, "compile": a.compile, "device": str(device),
           "width": a.width, "seconds_per_step": per_step, "samples_per_s": rows / per_step, **eff.as_dict()}
    if method == "clswgan":
        steps = len(plan)
        print(f"    ours          {per_step * steps:8.1f} s/epoch  {rows / per_step:9.0f} samples/s")
        if not a.no_host:
            host = time_host_batches(m, split, a.iters, device, a.precision)
            print(f"    host-batches  {host * steps:8.1f} s/epoch  {rows / host:9.0f} samples/s"
                  f"   (released-code way / ours = {host / per_step:.2f})")
            rec["host_batches_ratio"] = host / per_step
        if not a.no_classifier:
            t_ours, seen = time_classifier(split, u, device, host=False)
            t_host, _ = time_classifier(split, u, device, host=True)
            print(f"[{name}] final classifier (25 epochs, {seen // 25} features, batch 300):")
            print(f"    ours          {t_ours:8.1f} s        {seen / t_ours:9.0f} samples/s")
            print(f"    host-batches  {t_host:8.1f} s        {seen / t_host:9.0f} samples/s"
                  f"   (released-code way / ours = {t_host / t_ours:.2f})")
            rec["classifier_samples_per_s"] = seen / t_ours
    rec["peak_memory_bytes"] = peak_mem_bytes(device)
    print(f"[{name}] peak memory {peak_mem(device)}")
    return rec


def main():
    ap = size_parser(__doc__, SIZES, ["cub", "awa2"], "generator iterations timed (extrapolated to an epoch)")
    ap.add_argument("--method", choices=METHODS, default="clswgan")
    ap.add_argument("--precision", nargs="+", choices=("fp32", "tf32", "bf16"), default=["fp32"],
                    help="one run per precision listed")
    ap.add_argument("--compile", action="store_true", help="torch.compile the networks (trainer.compile=true)")
    ap.add_argument("--width", type=int, default=4096, help="hidden width of the networks (paper: 4096)")
    ap.add_argument("--no-host", action="store_true", help="skip the released-code-way (host-batches) timing")
    ap.add_argument("--no-classifier", action="store_true", help="skip the final-classifier timing")
    ap.add_argument("--json", help="write the figures of this run to this file (a list of records)")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    records = [bench(args.method, name, argparse.Namespace(**{**vars(args), "precision": p}), device)
               for name in args.sizes for p in args.precision]
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
