"""An interrupted + resumed run ends with exactly the numbers of an uninterrupted one; checkpoints hold
the epochs they claim; a rerun with another config never resumes this one's files."""

import json
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import compose_cfg, shrink
from zsl_lightning.callbacks import ZSLCheckpoint
from zsl_lightning.errors import ConfigError
from zsl_lightning.pipeline import run
from zsl_lightning.utils.io import atomic_torch_save

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


class _FakeTrainer:
    """What ZSLCheckpoint uses of a Trainer; a checkpoint here is just the 0-based epoch, as Lightning's."""

    sanity_checking = False
    is_global_zero = True
    current_epoch = 0

    def save_checkpoint(self, path, weights_only=False):
        atomic_torch_save({"epoch": self.current_epoch}, path)


def _drive(cb, history):
    trainer, module = _FakeTrainer(), SimpleNamespace(history=[])
    for entry in history:
        trainer.current_epoch = entry["epoch"] - 1
        module.history.append(entry)
        cb.on_train_epoch_end(trainer, module)
    return lambda name: torch.load(cb.dirpath / f"{name}.ckpt")["epoch"] + 1


# The test phase of eval.select=val evaluates at both selected epochs; here validation chose epoch 1 for
# ZSL and 2 for GZSL, and epoch 2 happens to have the higher *test* T1.
TEST_HISTORY = [{"epoch": 1, "zsl_t1": 50.0, "gzsl_H": 30.0}, {"epoch": 2, "zsl_t1": 60.0, "gzsl_H": 40.0}]
MONITORS = {"zsl": "zsl_t1", "gzsl": "gzsl_H"}


def test_best_checkpoints_hold_the_validation_selected_epochs(tmp_path):
    held = _drive(ZSLCheckpoint(tmp_path, MONITORS, epochs={"zsl": 1, "gzsl": 2}), TEST_HISTORY)
    assert held("best_zsl") == 1  # not 2, although its test T1 is higher: no selection on test
    assert held("best_gzsl") == 2 and held("last") == 2


def test_best_checkpoints_track_the_maximum_without_fixed_epochs(tmp_path):
    # dev phase (validation numbers) and eval.select=test_best: best evaluation so far, earliest on ties
    history = [*TEST_HISTORY, {"epoch": 3, "zsl_t1": 60.0, "gzsl_H": 20.0}]
    held = _drive(ZSLCheckpoint(tmp_path, MONITORS), history)
    assert held("best_zsl") == 2 and held("best_gzsl") == 2 and held("last") == 3


def test_results_record_the_epoch_each_checkpoint_holds(tmp_path, cache_dir):
    res = run(_cfg(tmp_path, cache_dir, tmp_path / "run", ["eval.select=val", "eval.every=1"]))
    for task, epoch in res["selection"]["epochs"].items():
        rec = res["checkpoints"][f"best_{task}"]
        assert rec["epoch"] == epoch and "validation" in rec["selected_on"]
        assert torch.load(tmp_path / "run" / rec["path"], weights_only=False)["epoch"] + 1 == epoch
    assert res["checkpoints"]["last"]["epoch"] == max(res["selection"]["epochs"].values())


def test_rerun_with_other_overrides_refuses_the_finished_dev_phase(tmp_path, cache_dir):
    out = tmp_path / "run"
    run(_cfg(tmp_path, cache_dir, out, ["eval.select=val", "eval.dev_only=true"]))
    with pytest.raises(ConfigError, match=r"different config \(differs in: method.cls_weight\).*hydra.run.dir"):
        run(_cfg(tmp_path, cache_dir, out, ["eval.select=val", "method.cls_weight=0.5"]))
    # the same config reuses it (eval.dev_only is not part of the fingerprint), and resume=false recomputes
    assert run(_cfg(tmp_path, cache_dir, out, ["eval.select=val"]))["headline"]
    assert run(_cfg(tmp_path, cache_dir, out, ["eval.select=val", "method.cls_weight=0.5", "resume=false",
                                               "eval.dev_only=true"]))["validation"]


def test_rerun_with_other_overrides_refuses_to_resume_the_test_phase(tmp_path, cache_dir):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(_cfg(tmp_path, cache_dir, out, ["eval.select=last", f"+callbacks.crash._target_={CRASH}",
                                             "+callbacks.crash.epoch=2"]))
    with pytest.raises(ConfigError, match="last.ckpt holds a test phase of a different config"):
        run(_cfg(tmp_path, cache_dir, out, ["eval.select=last", "seed=1"]))
