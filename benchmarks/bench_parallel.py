"""Two runs at once against the same two one after the other: does sharing a machine slow every run down?

    python benchmarks/bench_parallel.py                       # every variant, `debug=fast`, seeds 0 and 1
    python benchmarks/bench_parallel.py --variants sequential joblib --args debug=fast method=vaegan

Variants (each run is ``python train.py <args> seed=<s>`` in a fresh temporary run directory):

* ``sequential``: seed 0, then seed 1 — the reference wall time;
* ``parallel``: both started by hand at once, no flag (each sees one job: all cores each);
* ``parallel-threads``: both at once with ``threads=<cores / 2>`` (what a user gives two terminals);
* ``joblib``: one multirun ``-m seed=0,1 hydra/launcher=local_parallel`` (n_jobs=2): each job takes
  cores ÷ 2 threads by itself (``zsl_lightning.utils.env.configure_threads``);
* ``multirun``: the same multirun under Hydra's basic launcher (jobs in sequence, one process).

``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` are removed from the runs' environment (``--keep-env`` keeps
them), so what is measured is the automatic choice. Prints each wall time and its ratio to ``sequential``
(issue 16's goal: ``joblib`` ≤ 0.8 on 2 cores). A benchmark, not a test: numbers depend on the machine and
on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("sequential", "parallel", "parallel-threads", "joblib", "multirun")


def _cmd(args: list[str], *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *args, *extra]


def _wait(procs: list[subprocess.Popen], what: str) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{what} failed (exit {p.returncode}):\n{err.decode()[-3000:]}")


def run_variant(name: str, args: list[str], seeds: list[int], tmp: Path, env: dict) -> float:
    """Wall time of one variant, in seconds."""
    kw = dict(cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cores = len(os.sched_getaffinity(0))
    t0 = time.perf_counter()
    if name == "sequential":
        for s in seeds:
            _wait([subprocess.Popen(_cmd(args, f"seed={s}", f"hydra.run.dir={tmp}/{name}-{s}"), **kw)], name)
    elif name in ("parallel", "parallel-threads"):
        extra = [f"threads={max(1, cores // len(seeds))}"] if name == "parallel-threads" else []
        _wait([subprocess.Popen(_cmd(args, f"seed={s}", f"hydra.run.dir={tmp}/{name}-{s}", *extra), **kw)
               for s in seeds], name)
    else:
        launcher = ["hydra/launcher=local_parallel", f"hydra.launcher.n_jobs={len(seeds)}"] if name == "joblib" else []
        seed_list = ",".join(str(s) for s in seeds)
        _wait([subprocess.Popen(_cmd(["-m", *args], f"seed={seed_list}", f"hydra.sweep.dir={tmp}/{name}",
                                     *launcher), **kw)], name)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--args", nargs="+", default=["debug=fast"], help="overrides of every run")
    ap.add_argument("--keep-env", action="store_true", help="keep OMP_NUM_THREADS / MKL_NUM_THREADS")
    opts = ap.parse_args()
    env = dict(os.environ, WANDB_MODE="offline", HYDRA_FULL_ERROR="1")
    if not opts.keep_env:
        env.pop("OMP_NUM_THREADS", None)
        env.pop("MKL_NUM_THREADS", None)
    load = os.getloadavg()[0]
    print(f"{len(os.sched_getaffinity(0))} cores (affinity), load(1 min)={load:.1f}, runs: train.py "
          f"{' '.join(opts.args)} seed={opts.seeds}")
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in opts.variants:
            times[name] = run_variant(name, opts.args, opts.seeds, Path(tmp), env)
            ref = times.get("sequential")
            ratio = f"  {times[name] / ref:.2f}x sequential" if ref else ""
            print(f"{name:>17}: {times[name]:7.1f} s{ratio}", flush=True)
    print(f"load(1 min) at the end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
