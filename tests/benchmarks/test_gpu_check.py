"""``benchmarks/gpu_check.sh --device cpu --quick``: every part runs and the JSON holds its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    p = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--quick", "--budget", "900",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1200,
                       env={**os.environ, "PYTHON": sys.executable})
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    parts = report["parts"]
    assert set(parts) == {"tests", "clswgan_eager", "clswgan_compiled", "clf_bf16", "train_run"}
    assert all(part["status"] == "ok" for part in parts.values())
    records = [r for name in ("clswgan_eager", "clswgan_compiled", "clf_bf16") for r in parts[name]["results"]]
    assert {(r["precision"], r["compile"]) for r in records if r["method"] == "clswgan"} == {
        (p, c) for p in ("fp32", "tf32", "bf16") for c in (False, True)}
    for r in records:
        assert r["samples_per_s"] > 0 and r["flops_per_step"] > 0 and r["peak_memory_bytes"] > 0
        assert 0 < r["share_of_peak"] <= 1.5
    assert "host_batches_ratio" in parts["clswgan_eager"]["results"][0]  # the released-code-way comparison
    run = parts["train_run"]["results"]
    assert run["epochs"] == 2 and run["wall_s"] > 0 and run["peak_memory_bytes"] > 0
    assert len(report["summary"]) == len(records) + 1
