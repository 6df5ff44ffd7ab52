"""Same-math speedups of issue 16, each timed off and on at benchmark size (paper-size f-CLSWGAN networks):

    python benchmarks/bench_same_math.py --device cpu --iters 10
    python benchmarks/bench_same_math.py --sizes cub --evals 1 --cls-epochs 25

* batched fakes: the critic phase makes the fakes of its ``n_critic`` batches with one generator forward on
  n_critic·B rows instead of n_critic forwards on B rows (G is fixed during the critic loop). Not an option of
  the framework (no gain on CPU, docs/benchmarks.md): emulated here by handing ``make_fake`` the slices of
  one forward;
* ``eval.share_synthesis``: one evaluation (ZSL + GZSL final classifiers, ``syn_num`` per unseen class) with
  one synthetic unseen set for both classifiers instead of one each.

Both change the random stream (hence numbers), so a kept one is an option that defaults off. Runs alternate
off / on to spread machine noise over both.
"""

from __future__ import annotations

import time

import torch
from bench_clswgan import SIZES, _Bare, build  # benchmarks/ (run as a script)
from common import size_parser, sync, time_step


def time_steps(m, split, iters, device, batched: bool) -> float:
    from zsl_lightning.data.samplers import RandomBatches

    plan = RandomBatches(64, m.n_critic).sample(split.train_y.cpu(), torch.Generator().manual_seed(0)).to(device)

    def step(i):
        idx = plan[i % len(plan)]
        batch = {"x": split.train_x[idx], "target": split.train_y[idx]}
        if batched:
            with torch.no_grad():
                x_all, t_all = batch["x"], batch["target"]
                k, b = x_all.shape[:2]
                fakes = m.generate(m.sample_noise(k * b), m.condition(t_all.flatten(0, 1))).unflatten(0, (k, b))
            queue = iter(fakes)
            m.make_fake = lambda x, cond: next(queue)  # the critic loop takes its fakes in batch order
        try:
            m.training_step(batch, i)
        finally:
            m.__dict__.pop("make_fake", None)

    return time_step(step, iters, device)


def time_evaluation(m, split, device, share: bool) -> float:
    m.eval_cfg.share_synthesis = share
    sync(device)
    t = time.perf_counter()
    m.run_evaluation(1)
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    ap = size_parser(__doc__, SIZES, ["cub"], "generator iterations timed per setting and repeat")
    ap.add_argument("--repeats", type=int, default=2, help="off/on alternations of each measurement")
    ap.add_argument("--evals", type=int, default=1, help="evaluations timed per setting and repeat")
    ap.add_argument("--cls-epochs", type=int, default=25, help="final-classifier epochs (paper: 25)")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    for name in args.sizes:
        n, d, a, s, u = SIZES[name]
        m, split = build(n, d, a, s, u, device)
        _Bare(m)
        m.eval_cfg.classifier.epochs = args.cls_epochs
        steps = {False: [], True: []}
        evals = {False: [], True: []}
        for _ in range(args.repeats):
            for on in (False, True):
                steps[on].append(time_steps(m, split, args.iters, device, on))
            for on in (False, True):
                evals[on].extend(time_evaluation(m, split, device, on) for _ in range(args.evals))
        off, on = min(steps[False]), min(steps[True])
        print(f"[{name}] generator iteration (n_critic {m.n_critic}, batch 64), best of {args.repeats}:")
        print(f"    per-batch fakes {off * 1e3:8.1f} ms   batched fakes {on * 1e3:8.1f} ms   ratio {on / off:.3f}")
        off, on = min(evals[False]), min(evals[True])
        print(f"[{name}] one evaluation (ZSL + GZSL, syn_num {m.eval_cfg.syn_num}, {args.cls_epochs} classifier "
              f"epochs), best of {len(evals[False])}:")
        print(f"    share_synthesis=false {off:7.2f} s   true {on:7.2f} s   ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
