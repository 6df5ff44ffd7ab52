"""What the benchmarks share: their size options, device sync, a random feature-level split of a given size, and
the %-of-peak figure every benchmark prints (:func:`efficiency`)."""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def size_parser(doc: str, sizes, default: list[str], iters_help: str) -> argparse.ArgumentParser:
    """The options every shape-sized benchmark takes: ``--sizes`` (keys of ``sizes``), ``--iters``, ``--device``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=default, choices=sorted(sizes))
    ap.add_argument("--iters", type=int, default=10, help=iters_help)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_split(n: int, d: int, a: int, s: int, u: int, device: torch.device):
    """A single-label split of ``n`` random training features (``d``-d, ``s`` seen classes, ``u`` unseen, ``a``-d
    class embeddings) and 100 evaluation rows each: the shapes of a benchmark, not its data."""
    from zsl_lightning.data.split import FeatureSplit

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, s, (n,), generator=g)
    return FeatureSplit("test", torch.rand(n, d, generator=g), y, torch.rand(100, d), y[:100],
                        torch.rand(100, d), torch.randint(s, s + u, (100,)), torch.rand(s + u, a),
                        torch.arange(s), torch.arange(s, s + u)).to(device)


# ---------------------------------------------------------------------------------------------- %-of-peak
_GEMM_OPS = ("mm", "addmm", "bmm", "baddbmm", "convolution", "convolution_backward")


@dataclass
class Efficiency:
    """FLOPs of one step, the FLOP/s it achieved, the device's dense-matmul peak at the step's own GEMM shapes
    (measured in this run) and the share of that peak the step reached."""

    flops: float
    seconds: float
    peak: float
    gemms: int  # distinct GEMM shapes the peak was measured at

    @property
    def achieved(self) -> float:
        return self.flops / self.seconds

    @property
    def share(self) -> float:
        return self.achieved / self.peak if self.peak > 0 else float("nan")

    def line(self, label: str) -> str:
        return (f"{label}: {self.flops / 1e9:.3f} GFLOP/step, {self.achieved / 1e12:.4f} TFLOP/s achieved; "
                f"dense-matmul peak at its {self.gemms} GEMM shapes {self.peak / 1e12:.4f} TFLOP/s "
                f"-> {100 * self.share:.1f} % of peak")

    def as_dict(self) -> dict:
        return {"flops_per_step": self.flops, "flops_per_s": self.achieved, "peak_flops_per_s": self.peak,
                "share_of_peak": self.share}


class _GemmShapes(TorchDispatchMode):
    """Records every matrix product of a step as ``(batch, m, k, n, dtype)``: convolutions as their im2col GEMM
    (m = output positions, k = input channels per group x kernel, n = output channels), each gradient of a
    convolution's backward as one GEMM of the forward's size."""

    def __init__(self):
        super().__init__()
        self.shapes: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in _GEMM_OPS:
            for shape in _gemm_of(name, args, out):
                self.shapes[shape] += 1
        return out


def _gemm_of(name, args, out):
    if name in ("mm", "addmm"):
        a, b = (args[0], args[1]) if name == "mm" else (args[1], args[2])
        return [(1, a.shape[0], a.shape[1], b.shape[1], a.dtype)]
    if name in ("bmm", "baddbmm"):
        a, b = (args[0], args[1]) if name == "bmm" else (args[1], args[2])
        return [(a.shape[0], a.shape[1], a.shape[2], b.shape[2], a.dtype)]
    if name == "convolution":
        x, w, groups = args[0], args[1], args[8]
        m = out.shape[0] * math.prod(out.shape[2:])
        return [(groups, m, math.prod(w.shape[1:]), w.shape[0] // groups, x.dtype)]
    grad_out, x, w, groups, mask = args[0], args[1], args[2], args[9], args[10]  # convolution_backward
    shape = (groups, grad_out.shape[0] * math.prod(grad_out.shape[2:]), math.prod(w.shape[1:]),
             w.shape[0] // groups, x.dtype)
    return [shape] * sum(bool(v) for v in mask[:2])


def _gemm_rate(shape, device: torch.device, min_seconds: float, max_m: int, trials: int = 3) -> float:
    """FLOP/s of a bare ``(batch, m, k, n)`` product on ``device``: the best of ``trials`` timings of at least
    ``min_seconds`` each (a peak: a shared machine's load only ever lowers it); m capped at ``max_m`` (beyond a
    few thousand rows a GEMM's rate no longer grows; the cap keeps im2col-sized convolutions cheap to time)."""
    bsz, m, k, n, dtype = shape
    m = min(m, max_m)
    a = torch.randn(bsz, m, k, device=device).to(dtype)
    b = torch.randn(bsz, k, n, device=device).to(dtype)
    torch.bmm(a, b)
    sync(device)
    best = 0.0
    for _ in range(trials):
        reps, t = 0, time.perf_counter()
        while True:
            torch.bmm(a, b)
            reps += 1
            if reps % 4 == 0:
                sync(device)
                if time.perf_counter() - t >= min_seconds:
                    break
        best = max(best, 2.0 * bsz * m * k * n * reps / (time.perf_counter() - t))
    return best


def efficiency(step: Callable[[], object], seconds_per_step: float, device: torch.device | str,
               min_seconds: float = 0.05, max_m: int = 8192) -> Efficiency:
    """How close one training step runs to the device's dense-matmul peak.

    Runs ``step`` once more while recording every matrix product and convolution it dispatches, forward and
    backward (gradient-penalty double backward included), as GEMM shapes; its FLOPs are ``Σ 2·b·m·k·n``, the
    count of :class:`torch.utils.flop_counter.FlopCounterMode` (which cannot run here: its module hooks break
    ``autograd.grad``, which the gradient penalty calls). Then times each distinct shape as a bare product on
    ``device`` (in the current matmul settings: TF32 and autocast dtypes apply as they do to the step) and takes
    as the peak the rate of that mix, ``Σ FLOPs / Σ seconds``: the rate a step made of nothing but its own
    matrix products would reach. ``seconds_per_step`` is the step's measured time (the caller's timing loop)."""
    device = torch.device(device)
    rec = _GemmShapes()
    with rec:
        step()
    sync(device)
    flops, secs = 0.0, 0.0
    for shape, count in rec.shapes.items():
        f = 2.0 * shape[0] * shape[1] * shape[2] * shape[3] * count
        flops, secs = flops + f, secs + f / _gemm_rate(shape, device, min_seconds, max_m)
    return Efficiency(flops, float(seconds_per_step), flops / secs if secs else float("nan"), len(rec.shapes))


def time_step(step, iters: int, device, warmup: int = 1) -> float:
    """Seconds per call of ``step(i)`` (``i`` = 1..iters) after ``warmup`` calls of ``step(0)``, device synced."""
    for _ in range(warmup):
        step(0)
    sync(device)
    t = time.perf_counter()
    for i in range(iters):
        step(i + 1)
    sync(device)
    return (time.perf_counter() - t) / iters
