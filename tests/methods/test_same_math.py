"""Same-math speedups (issue 16): ``method.batched_fakes`` and ``eval.share_synthesis`` compute what the default
path computes, from fewer generator forwards; both are off by default (they change the random stream)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import bound_method, changed, snapshot
from zsl_lightning.errors import ConfigError
from zsl_lightning.methods.wgan import check_batched_fakes


def _batch(m):
    if m.data.label_mode == "multi":
        from zsl_lightning.data.loaders import MultiLabelBatchLoader

        return next(iter(MultiLabelBatchLoader(m.data, m.batch_plan, 0, lambda: 0, 0, torch.device("cpu"))))
    idx = m.batch_plan.sample(m.data.train_y, torch.Generator().manual_seed(0))[0]
    return {"x": m.data.train_x[idx], "target": m.data.train_y[idx], "idx": idx}


def _count_calls(net: nn.Module) -> list:
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("overrides", [["method=clswgan"], ["method=clf_clswgan", "data=synthetic_ml"]],
                         ids=["single", "multi"])
def test_batched_fakes_are_the_per_batch_fakes_of_the_same_noise(overrides, tmp_path, cache_dir):
    m, _ = bound_method(overrides, tmp_path, cache_dir)
    batch = _batch(m)
    x_all, t_all = batch["x"], batch["target"]
    k, b = x_all.shape[:2]
    m.generator.eval()  # CLF's dropout draws its own masks: compare the deterministic part
    calls = _count_calls(m.generator)
    torch.manual_seed(5)
    fakes = m.fakes_of_step(x_all, t_all)
    assert len(calls) == 1 and fakes.shape[:2] == (k, b)
    torch.manual_seed(5)
    z = m.sample_noise(k * b)  # the one draw of the batched path, row block i for batch i
    with torch.no_grad():
        for i in range(k):
            want = m.generate(z[i * b:(i + 1) * b], m.condition(t_all[i]))
            torch.testing.assert_close(fakes[i], want.view_as(fakes[i]), rtol=1e-5, atol=1e-6)


def test_critic_phase_with_batched_fakes_calls_the_generator_once(tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan"], tmp_path, cache_dir)
    batch = _batch(m)
    calls = _count_calls(m.generator)
    m.critic_phase(batch, {})
    assert len(calls) == m.n_critic  # default: one forward per critic batch
    m.batched_fakes = True
    before_g, before_d = snapshot(m.generator), snapshot(m.discriminator)
    calls.clear()
    m.critic_phase(batch, {})
    assert len(calls) == 1
    assert changed(before_d, m.discriminator) and not changed(before_g, m.generator)


def test_batched_fakes_refused_where_they_would_change_the_math(tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan"], tmp_path, cache_dir)
    m.generator = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with pytest.raises(ConfigError, match="BatchNorm"):
        check_batched_fakes(m)
    with pytest.raises(ConfigError, match="before_critic_batch"):
        bound_method(["method=tfvaegan", "+method.batched_fakes=true"], tmp_path, cache_dir)


@pytest.mark.parametrize("share", [False, True])
def test_share_synthesis_gives_gzsl_the_zsl_set(share, tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan", "eval.syn_num=4", "eval.classifier.epochs=1",
                         f"eval.share_synthesis={str(share).lower()}"], tmp_path, cache_dir)
    sets, original = {}, m.classifier_training_data

    def spy(split, task):
        sets[task] = original(split, task)
        return sets[task]

    m.classifier_training_data = spy
    calls = _count_calls(m.generator)
    m.run_evaluation(1)
    zsl_x, gzsl_x = sets["zsl"][0], sets["gzsl"][0]
    n_real = len(m.data.train_x)  # eval.gzsl_seen=real: real seen rows first, then the unseen synthetic set
    assert len(calls) == (1 if share else 2)
    assert torch.equal(gzsl_x[n_real:], zsl_x) == share
    assert m._shared_synthesis is None  # nothing held after the evaluation
