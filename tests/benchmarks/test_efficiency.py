"""The %-of-peak helper every benchmark prints (benchmarks/common.py: ``efficiency``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from common import efficiency  # noqa: E402


def test_flops_of_a_linear_step_are_hand_counted_and_share_is_sane():
    m, k, n = 64, 96, 48
    torch.manual_seed(0)
    lin = torch.nn.Linear(k, n)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    x = torch.randn(m, k)  # the input needs no gradient: backward computes dW only

    def step():
        loss = lin(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(20):
        step()
    seconds = (time.perf_counter() - t) / 20
    eff = efficiency(step, seconds, "cpu", min_seconds=0.01)
    # forward x·Wᵀ: 2·m·k·n; backward dW = gᵀ·x: 2·m·k·n; no dx (x does not require grad)
    assert eff.flops == 2 * m * k * n * 2
    assert eff.gemms == 2  # the forward's (m, k, n) and dW's (n, m, k) product
    assert eff.achieved > 0 and eff.peak > 0
    assert 0 < eff.share <= 1.5
    assert "% of peak" in eff.line("tiny")


def test_input_gradient_adds_one_gemm_per_layer():
    m, k, h, n = 32, 40, 24, 8
    net = torch.nn.Sequential(torch.nn.Linear(k, h), torch.nn.ReLU(), torch.nn.Linear(h, n))
    x = torch.randn(m, k)

    def step():
        net(x).sum().backward()

    eff = efficiency(step, 1.0, "cpu", min_seconds=0.005)
    # layer 1: forward + dW; layer 2: forward + dW + dX (its input carries layer 1's graph)
    assert eff.flops == 2 * m * k * h * 2 + 2 * m * h * n * 3
    with FlopCounterMode(display=False) as counter:
        step()
    assert eff.flops == counter.get_total_flops()  # the same count as torch's own flop counter


def test_convolutions_count_as_their_im2col_gemm():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(2, 3, 10, 10)

    def step():
        conv(x).sum().backward()

    eff = efficiency(step, 1.0, "cpu", min_seconds=0.005)
    with FlopCounterMode(display=False) as counter:
        step()
    assert eff.flops == counter.get_total_flops() == 2 * (2 * 10 * 10) * (3 * 9) * 8 * 2  # forward + dW


def test_gradient_penalty_double_backward_is_counted():
    from zsl_lightning.losses import gradient_penalty

    d = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 1))
    x = torch.randn(4, 16)

    def step():
        gradient_penalty(lambda v: d(v), x, x.flip(0)).backward()

    eff = efficiency(step, 1.0, "cpu", min_seconds=0.005)
    assert eff.flops > 2 * 4 * 16 * 8 * 3  # more than one forward + backward of the first layer
