"""``trainer.compile`` / ``trainer.cuda_graphs`` (zsl_lightning/utils/compile.py): compiled networks keep eager
checkpoint keys, wrapped-network checkpoints load, and a compiled step computes what the eager one does."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers import bound_method, compose_cfg
from zsl_lightning.errors import ConfigError
from zsl_lightning.utils.compile import COMPILED_PREFIX, compile_mode, compile_networks


def test_in_place_compile_keeps_state_dict_keys(tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan"], tmp_path, cache_dir, width=16)
    keys = list(m.state_dict())
    names = compile_networks(m)
    assert {"generator", "discriminator"} <= set(names)
    assert list(m.state_dict()) == keys
    assert not any(COMPILED_PREFIX in k for k in keys)


def test_checkpoint_of_wrapped_networks_loads_into_eager_method(tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan"], tmp_path, cache_dir, width=16)
    wrapped = {}
    for k, v in m.state_dict().items():
        net = k.split(".", 1)[0]
        if net in ("generator", "discriminator"):
            k = k.replace(f"{net}.", f"{net}.{COMPILED_PREFIX}", 1)  # what torch.compile(net) saves
        wrapped[k] = v.clone() + (1.0 if v.is_floating_point() else 0)
    assert list(torch.compile(m.generator).state_dict())[0].startswith(COMPILED_PREFIX)
    m.load_state_dict(wrapped)  # strict: every key must match once the prefix is stripped
    expected = {k.replace(COMPILED_PREFIX, ""): v for k, v in wrapped.items()}
    assert m.state_dict().keys() == expected.keys()
    for k, v in m.state_dict().items():
        assert torch.equal(v, expected[k]), k


def test_cuda_graphs_do_not_change_a_cpu_run():
    assert compile_mode(False, True, "cpu") is None
    assert compile_mode(True, True, "cpu") == "default"
    assert compile_mode(True, False, "cuda") == "default"
    assert compile_mode(False, True, "cuda") == "reduce-overhead"


def test_trainer_options_are_typed_and_not_passed_to_lightning(tmp_path):
    from zsl_lightning.phases import trainer_node
    from zsl_lightning.utils.schema import check_config_types

    cfg = compose_cfg(["trainer.compile=true"], tmp_path)
    node = trainer_node(cfg)
    assert "compile" not in node and "cuda_graphs" not in node and node.max_epochs == cfg.method.epochs
    check_config_types(cfg)
    with pytest.raises(ConfigError, match="trainer.compile"):
        check_config_types(compose_cfg(["trainer.compile=yes"], tmp_path))


def _step(m, batch, seed: int) -> tuple[dict, dict]:
    """Losses and parameters after one training step from ``seed``."""
    m.on_train_batch_start(batch, 0)
    losses = {}
    m.log_losses = lambda d, **kw: losses.update({k: torch.as_tensor(v).detach().clone() for k, v in d.items()})
    torch.manual_seed(seed)
    m.training_step(batch, 0)
    return losses, {k: v.detach().clone() for k, v in m.named_parameters()}


def _compare(device: str, mode: str | None, tmp_path, cache_dir, rtol: float, atol: float):
    m, _ = bound_method(["method=clswgan"], tmp_path, cache_dir, width=32)
    m = m.to(device)
    m.data = m.data.to(device)
    idx = m.batch_plan.sample(m.data.train_y.cpu(), torch.Generator().manual_seed(0))[0].to(device)
    batch = {"x": m.data.train_x[idx], "target": m.data.train_y[idx]}
    state = copy.deepcopy(m.state_dict())
    opt_state = [copy.deepcopy(o.state_dict()) for o in m.trainer.optimizers]
    eager_losses, eager_params = _step(m, batch, 0)
    torch._dynamo.reset()
    assert compile_networks(m, mode)
    m._compile_mode = mode  # what setup() records (the Trainer's fit is not run again here)
    for seed in (0, 0):  # the second call replays what the first compiled (and, with CUDA graphs, recorded)
        m.load_state_dict(state)
        for o, s in zip(m.trainer.optimizers, opt_state, strict=True):
            o.load_state_dict(s)
        losses, params = _step(m, batch, seed)
    assert eager_losses.keys() == losses.keys()
    for k in losses:
        torch.testing.assert_close(losses[k], eager_losses[k], rtol=rtol, atol=atol, msg=lambda s, k=k: f"{k}: {s}")
    # Adam's first step moves every element by about lr * sign(grad) (m / sqrt(v) = +-1), so a gradient element
    # that is ~0 in both (a float rounding apart) may flip sign and move 2 lr apart per step (the critic takes
    # n_critic steps): allow that, on a few elements; everything else agrees to rtol / atol
    lr = {id(p): g["lr"] for o in m.trainer.optimizers for g in o.param_groups for p in g["params"]}
    for k, p in m.named_parameters():
        diff = (params[k] - eager_params[k]).abs()
        off = diff > atol + rtol * eager_params[k].abs()
        bound = 2 * m.n_critic * lr[id(p)] * (1 + 1e-3) if id(p) in lr else atol  # not optimised: must not move
        assert diff.max() <= bound, f"{k}: {diff.max():.3g} > {bound:.3g}"
        assert off.float().mean() <= 0.1, f"{k}: {int(off.sum())} / {off.numel()} elements differ"


@pytest.mark.slow
def test_compiled_step_matches_eager_on_cpu(tmp_path, cache_dir):
    _compare("cpu", "default", tmp_path, cache_dir, rtol=1e-3, atol=1e-5)  # inductor fuses reductions: ~1e-4


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_step_matches_eager(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    _compare("cuda", "reduce-overhead", tmp_path, cache_dir, rtol=1e-3, atol=1e-4)


def test_compiled_and_eager_runs_share_a_fingerprint(tmp_path):
    """A run started with trainer.compile=true resumes eagerly (and vice versa): the same computation."""
    from omegaconf import open_dict

    from zsl_lightning.utils.rundir import config_fingerprint

    prints = []
    for extra in ([], ["trainer.compile=true", "trainer.cuda_graphs=true"], ["trainer.precision=bf16-mixed"]):
        cfg = compose_cfg(extra, tmp_path)
        with open_dict(cfg):
            cfg.data_info = {"feature_dim": 8, "embedding_dim": 4, "attribute_dim": 4, "num_classes": 3,
                             "num_seen": 2, "num_unseen": 1, "name": "x", "label_mode": "single"}
        prints.append(config_fingerprint(cfg))
    assert prints[0] == prints[1] != prints[2]

