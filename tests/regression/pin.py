"""The pinned-results fixture: every ``conf/method/*.yaml`` on its embedded benchmark, fixed seed, tiny budget.

``python -m tests.regression.pin`` (re)writes ``pinned_results.json`` — only do this on purpose, when a
change is *meant* to change numbers, and say so in the commit. ``test_pinned_results.py`` reruns the same
jobs and compares.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "pinned_results.json"
# Methods added after the fixture was recorded that read feature maps, not a vector benchmark: not pinned (a
# multi-minute run); their behaviour and learning are tested in their own files.
NOT_PINNED = {"gbe": "feature maps (data=synthetic_maps); tests/methods/test_gbe.py"}
BUDGET = ["eval.select=val", "method.epochs=2", "eval.every=1", "eval.syn_num=8", "eval.classifier.epochs=1",
          "seed=3"]


def machine() -> dict:
    import torch

    return {"torch": torch.__version__.split("+")[0], "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def jobs() -> list[tuple[str, str]]:
    """(method, data) of every method config and every label mode it declares."""
    from tests.helpers import DATA_FOR_MODE, method_jobs

    return [(method, DATA_FOR_MODE[mode]) for method, mode in method_jobs() if method not in NOT_PINNED]


def run_job(method: str, data: str, out_dir: Path, cache_dir: Path) -> dict:
    import torch

    from tests.helpers import compose_cfg, shrink
    from zsl_lightning.pipeline import run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thread count changes reduction order; pin it (for this job only)
    try:
        cfg = shrink(compose_cfg([f"method={method}", f"data={data}", *BUDGET], out_dir, cache_dir))
        res = run(cfg)
    finally:
        torch.set_num_threads(threads)
    return {"headline": res["headline"], "validation": res["validation"], "epochs": res["selection"]["epochs"],
            "history": res["history"]}


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method, data in jobs():
            print(f"pinning {method} on {data}", file=sys.stderr)
            results[f"{method}@{data}"] = run_job(method, data, Path(tmp) / f"{method}-{data}", Path(tmp) / "cache")
    FIXTURE.write_text(json.dumps({"machine": machine(), "budget": BUDGET, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
