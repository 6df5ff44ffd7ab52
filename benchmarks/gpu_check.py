"""The one-shot GPU check behind ``benchmarks/gpu_check.sh`` (at most ``--budget`` seconds, 8 minutes by default).

Parts, each in its own process with a timeout from what is left of the budget, so one that fails or hangs is
recorded and the rest still run:

1. ``tests``: the CUDA-only tests (``pytest -m cuda``; on a CPU they are skipped, which is the check there);
2. ``clswgan``: ``bench_clswgan.py`` at CUB size, fp32 / TF32 / bf16, eager and compiled (``--compile``);
3. ``clf``: one paper-size CLF generator update in bf16 (``bench_clswgan.py --method clf --sizes nuswide``);
4. ``train_run``: a 2-epoch f-CLSWGAN run of the pipeline (``eval.select=last``: the test phase only, with its
   classifier pre-training and one evaluation) on synthetic data shaped like CUB (``conf/data/synthetic.yaml``'s
   generator: 150 seen (50 of them validation) + 50 unseen classes, 312-d attributes, 2,048-d features,
   59 images per class).

It writes one JSON (``--out``): per part its status and seconds, and the figures: samples/s, %-of-peak (share
of the dense-matmul peak measured at the step's GEMM shapes, ``common.efficiency``) and peak memory (GPU
bytes allocated; on a CPU the process's peak RSS). ``--device cpu --quick`` runs the same parts at small sizes
(tiny shapes, 256-wide networks, the embedded synthetic benchmark): what the slow test runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package (the train_run part imports it)
CUB_SHAPED = ["data.generator.num_seen=150", "data.generator.num_val=50", "data.generator.num_unseen=50",
              "data.generator.attribute_dim=312", "data.generator.feature_dim=2048",
              "data.generator.images_per_class=59"]


def run_part(name: str, cmd: list[str], timeout: float, report: dict, json_file: Path | None = None):
    """Run ``cmd``; record status, seconds and (from ``json_file``) its figures under ``report["parts"][name]``."""
    t = time.perf_counter()
    entry: dict = {"command": " ".join(cmd)}
    if timeout < 5:
        entry["status"] = "skipped: budget spent"
        report["parts"][name] = entry
        return
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        entry["status"] = "ok" if p.returncode == 0 else f"failed (exit {p.returncode})"
        tail = (p.stdout + p.stderr)[-3000:]
    except subprocess.TimeoutExpired as e:
        entry["status"] = f"timed out after {timeout:.0f} s"
        tail = ((e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace"))[-3000:]
    entry["seconds"] = round(time.perf_counter() - t, 1)
    if json_file is not None and json_file.is_file():
        entry["results"] = json.loads(json_file.read_text())
    entry["output_tail"] = tail
    report["parts"][name] = entry
    print(f"[gpu_check] {name}: {entry['status']} in {entry['seconds']} s", flush=True)
    print(tail[-1500:], flush=True)


def train_run(device: str, quick: bool, out_dir: str) -> None:
    """Part 4, in this (child) process: compose like ``train.py``, run the pipeline, print one JSON line."""
    import resource

    import torch
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from zsl_lightning.pipeline import run

    ov = ["method=clswgan", "data=synthetic", "method.epochs=2", "eval.select=last", "eval.every=2",
          "logger=none", "callbacks=none", "print_config=false", "trainer.enable_progress_bar=false",
          f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}"]
    if quick:
        ov += ["method.generator.hidden=[256]", "method.discriminator.hidden=[256]", "method.pretrain.epochs=2",
               "eval.syn_num=50", "eval.classifier.epochs=2"]
    else:
        ov += CUB_SHAPED
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=ov, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = out_dir
        cfg.paths.cache_dir = str(Path(out_dir) / "cache")
    t = time.perf_counter()
    res = run(cfg)
    wall = time.perf_counter() - t
    rows = int(cfg.data_info.get("num_trainval", 0) or 0)  # the test phase trains on trainval
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    out = {"wall_s": wall, "epochs": 2, "peak_memory_bytes": int(peak), "headline": res.get("headline"),
           "train_rows": rows, "samples_per_s_incl_eval": 2 * rows / wall if rows else None,
           "shape": "quick (embedded synthetic, 256-wide)" if quick else "CUB-shaped synthetic, paper-size nets"}
    print("GPU_CHECK_JSON " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cuda (default when present) | cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (for a CPU)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for all parts (default 8 minutes)")
    ap.add_argument("--out", default="gpu_check.json", help="the JSON report")
    ap.add_argument("--part", choices=("train_run",), help=argparse.SUPPRESS)  # a child process's part
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if a.part == "train_run":
        return train_run(device, a.quick, a.run_dir)
    py, start = sys.executable, time.perf_counter()
    report: dict = {"device": device, "quick": a.quick, "torch": torch.__version__, "parts": {},
                    "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None}

    def left(share: float) -> float:
        return min(share * a.budget, a.budget - (time.perf_counter() - start) - 5)

    size = ["--sizes", "tiny", "--width", "256", "--iters", "3"] if a.quick else ["--sizes", "cub", "--iters", "30"]
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        run_part("tests", [py, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"],
                 left(0.2), report)
        bench = [py, "benchmarks/bench_clswgan.py", "--device", device, *size, "--precision", "fp32", "tf32", "bf16"]
        run_part("clswgan_eager", bench + ["--json", str(tmp / "eager.json")], left(0.2), report, tmp / "eager.json")
        run_part("clswgan_compiled", bench + ["--compile", "--no-host", "--no-classifier", "--json",
                                              str(tmp / "compiled.json")], left(0.35), report, tmp / "compiled.json")
        clf = ["--width", "256", "--iters", "2"] if a.quick else ["--iters", "10"]
        run_part("clf_bf16", [py, "benchmarks/bench_clswgan.py", "--device", device, "--method", "clf", "--sizes",
                              "nuswide", "--precision", "bf16", *clf, "--json", str(tmp / "clf.json")],
                 left(0.15), report, tmp / "clf.json")
        run_part("train_run", [py, "benchmarks/gpu_check.py", "--part", "train_run", "--device", device,
                               "--run-dir", str(tmp / "run"), *(["--quick"] if a.quick else [])],
                 left(1.0), report)
        tr = report["parts"]["train_run"]
        for line in tr.get("output_tail", "").splitlines():
            if line.startswith("GPU_CHECK_JSON "):
                tr["results"] = json.loads(line.split(" ", 1)[1])
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["summary"] = summary(report)
    Path(a.out).write_text(json.dumps(report, indent=1))
    print(f"[gpu_check] wrote {a.out} ({report['seconds']} s)")
    for row in report["summary"]:
        print("[gpu_check]", row)
    failed = [n for n, p in report["parts"].items() if p["status"] != "ok"]
    if failed:
        print(f"[gpu_check] not ok: {failed}")
        sys.exit(1)


def summary(report: dict) -> list[str]:
    """One line per benchmark record: samples/s, %-of-peak, peak memory."""
    rows = []
    for name, part in report["parts"].items():
        res = part.get("results")
        for r in res if isinstance(res, list) else []:
            rows.append(f"{name} {r['method']} {r['size']} {r['precision']}{' compiled' if r['compile'] else ''}: "
                        f"{r['samples_per_s']:,.0f} samples/s, {100 * r['share_of_peak']:.1f} % of peak, "
                        f"peak memory {r['peak_memory_bytes'] / 2**20:,.0f} MiB")
        if isinstance(res, dict):
            rows.append(f"{name}: {res['wall_s']:.1f} s for 2 epochs ({res['shape']}), peak memory "
                        f"{res['peak_memory_bytes'] / 2**20:,.0f} MiB")
    return rows


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    main()
