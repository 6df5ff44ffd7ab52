"""An interrupted + resumed run ends with exactly the numbers of an uninterrupted one."""

import json

import pytest
import torch

from tests.helpers import compose_cfg, shrink
from zsl_lightning.pipeline import run

CRASH = "tests.helpers.CrashAtEpochStart"


def _cfg(tmp_path, cache_dir, out, extra=()):
    return shrink(compose_cfg(["method=clswgan", "method.epochs=4", "eval.every=2", "eval.syn_num=10",
                               "eval.classifier.epochs=2", *extra], out, cache_dir))


@pytest.mark.parametrize("select,crash_split", [("last", "test"), ("val", "dev"), ("val", "test")])
def test_resume_matches_uninterrupted(tmp_path, cache_dir, select, crash_split):
    ref = run(_cfg(tmp_path, cache_dir, tmp_path / "ref", [f"eval.select={select}"]))

    out = tmp_path / "crashed"
    # the test phase of eval.select=val only trains up to the latest selected epoch (2 or 4 here)
    at = max(ref["selection"]["epochs"].values()) - 1 if (select, crash_split) == ("val", "test") else 2
    crash = [f"eval.select={select}", f"+callbacks.crash._target_={CRASH}", f"+callbacks.crash.epoch={at}",
             f"+callbacks.crash.split={crash_split}"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(_cfg(tmp_path, cache_dir, out, crash))
    phase_dir = out / "dev" if crash_split == "dev" else out
    ckpt = torch.load(phase_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == at - 1  # every epoch before the crash finished and was saved
    assert not (out / "results.json").exists()

    resumed = run(_cfg(tmp_path, cache_dir, out, [f"eval.select={select}"]))
    assert resumed["headline"] == ref["headline"]
    assert resumed["history"] == ref["history"]
    assert json.loads((out / "results.json").read_text())["headline"] == ref["headline"]


def test_resume_restores_optimizer_state(tmp_path, cache_dir):
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, cache_dir, out, ["eval.select=last", f"+callbacks.crash._target_={CRASH}",
                                          "+callbacks.crash.epoch=1"])
    with pytest.raises(RuntimeError):
        run(cfg)
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert len(ckpt["optimizer_states"]) == 2  # critic and generator Adam states
    steps = [max(s["step"].item() for s in o["state"].values()) for o in ckpt["optimizer_states"]]
    n_iter = ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"]
    assert steps[0] == 5 * steps[1]  # n_critic critic updates per generator update
    assert steps[1] > 0 and n_iter > 0


def test_resume_with_a_scheduler_restores_its_state(tmp_path, cache_dir):
    sched = ["method.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1,gamma:0.5}",
             "eval.select=last"]
    ref = run(_cfg(tmp_path, cache_dir, tmp_path / "ref", sched))
    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError):
        run(_cfg(tmp_path, cache_dir, out, [*sched, f"+callbacks.crash._target_={CRASH}", "+callbacks.crash.epoch=2"]))
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    lr0 = _cfg(tmp_path, cache_dir, out).method.optimizer_g.lr
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [2, 2]  # critic and generator schedulers
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(lr0 * 0.25)  # two halvings
    resumed = run(_cfg(tmp_path, cache_dir, out, sched))
    assert resumed["history"] == ref["history"]
