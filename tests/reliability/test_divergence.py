"""A diverging run stops with a message, keeps its last good checkpoint and says so in results.json."""

import json
import math

import pytest
import torch

from tests.helpers import compose_cfg, shrink
from tests.reliability.helpers import FAST, train
from zsl_lightning.errors import ConfigError, DivergenceError
from zsl_lightning.methods.divergence import DivergenceGuard, parse_divergence, refuse_non_finite
from zsl_lightning.pipeline import run

BLOW_UP = "tests.reliability.helpers.BlowUpAtEpoch"


def _guard_steps(mode, steps):
    g = DivergenceGuard(mode)
    g.reset()
    for role, loss in steps:
        g.observe(role, torch.tensor(loss))
    return g


def test_a_finite_epoch_passes_and_a_nan_names_role_step_and_last_finite_losses():
    params = {"d": [torch.ones(2)], "g": [torch.ones(2)]}
    _guard_steps("stop", [("d", 1.0), ("g", 2.0)]).check("M", 1, params)  # nothing raised
    g = _guard_steps("stop", [("d", 1.5), ("g", -2.0), ("d", 3.0), ("g", float("nan")), ("d", float("inf"))])
    with pytest.raises(DivergenceError) as e:
        g.check("M", 4, params)
    msg = str(e.value)
    assert "M, role 'g', epoch 4, manual step 4" in msg and "not finite" in msg
    assert "d=3" in msg and "g=-2" in msg  # the last finite loss of each role before it diverged
    assert e.value.details["last_finite_losses"] == {"d": 3.0, "g": -2.0}


def test_threshold_catches_huge_finite_losses_and_warn_only_warns():
    with pytest.raises(DivergenceError, match=r"exceeds the threshold \(1e\+06\)"):
        _guard_steps(1e6, [("d", 10.0), ("d", -1e31)]).check("M", 1, {})
    _guard_steps("stop", [("d", 1e31)]).check("M", 1, {})  # stop: only non-finite values count
    warn = _guard_steps("warn", [("d", float("nan"))])
    warn.check("M", 2, {})
    assert len(warn.warnings) == 1 and "epoch 2" in warn.warnings[0]


def test_non_finite_parameters_alone_are_divergence():
    g = _guard_steps("stop", [("g", 1.0)])
    with pytest.raises(DivergenceError, match="parameters are not finite"):
        g.check("M", 1, {"g": [torch.tensor([1.0, math.inf])]})


@pytest.mark.parametrize("bad", ["sometimes", 0, -1.0, "nan", True])
def test_divergence_option_is_checked(bad):
    with pytest.raises(ConfigError, match="method.divergence"):
        parse_divergence(bad)


def test_evaluation_refuses_non_finite_scores():
    refuse_non_finite(torch.zeros(3), "scores")
    with pytest.raises(DivergenceError, match="scores contain non-finite"):
        refuse_non_finite(torch.tensor([0.0, float("nan")]), "scores")


def _cfg(tmp_path, cache_dir, extra):
    return shrink(compose_cfg(["method=clswgan", "method.epochs=3", "eval.every=1", "eval.syn_num=10",
                               "eval.classifier.epochs=1", "eval.select=last", *extra], tmp_path / "run", cache_dir))


def test_late_divergence_keeps_the_last_good_checkpoint(tmp_path, cache_dir):
    out = tmp_path / "run"
    with pytest.raises(DivergenceError, match=r"(?s)\[test phase\].*epoch 2.*last good checkpoint is kept"):
        run(_cfg(tmp_path, cache_dir, [f"+callbacks.blow._target_={BLOW_UP}", "+callbacks.blow.epoch=1"]))
    res = json.loads((out / "results.json").read_text())
    assert res["status"] == "diverged" and "headline" not in res
    assert res["divergence"]["epoch"] == 2 and res["divergence"]["phase"] == "test"
    ckpts = sorted((out / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in ckpts] == ["last.ckpt"]  # best_* is only the last epoch here: never written
    ckpt = torch.load(ckpts[0], weights_only=False)
    assert ckpt["epoch"] == 0  # epoch 1, the last finite one
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_warn_mode_trains_on_but_never_checkpoints_non_finite_weights(tmp_path, cache_dir):
    out = tmp_path / "run"
    # the evaluation after the blow-up still refuses the NaN model's scores
    with pytest.raises(DivergenceError, match="Evaluation refused"):
        run(_cfg(tmp_path, cache_dir, ["method.divergence=warn", "eval.every=3",
                                       f"+callbacks.blow._target_={BLOW_UP}", "+callbacks.blow.epoch=1"]))
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 0
    assert json.loads((out / "results.json").read_text())["status"] == "diverged"


def test_nan_run_exits_nonzero_with_the_message_and_no_checkpoint(tmp_path, cache_dir):
    """Acceptance of issue 15: lr=1e30 on data=synthetic."""
    run_dir = tmp_path / "run"
    r = train([*FAST, "method.optimizer_g.lr=1e30", "method.optimizer_d.lr=1e30", f"hydra.run.dir={run_dir}"],
              tmp_path, cache_dir)
    out = r.stdout + r.stderr
    assert r.returncode == 3, out[-3000:]
    assert "DivergenceError" in out and "Training diverged: CLSWGAN" in out and "Traceback" not in out
    assert not list(run_dir.rglob("*.ckpt"))
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "diverged" and "headline" not in res
