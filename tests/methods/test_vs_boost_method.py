"""VS-Boost's training step, partner sampling, ablation switches and bad configurations."""

import pytest
import torch
from omegaconf import open_dict

from tests.helpers import bound_method, changed_nets, compose_cfg, shrink, snapshot_nets
from zsl_lightning.errors import ConfigError
from zsl_lightning.pipeline import build_datamodule, build_method

NETS = ("generator", "discriminator", "encoder", "regressor", "relation")


def _bound(tmp_path, cache_dir, extra=(), split="dev"):
    return bound_method(["method=vs_boost", *extra], tmp_path, cache_dir, split)[0]


def _batch(m, seed=0):
    split = m.data
    idx = m.batch_plan.sample(split.train_y, torch.Generator().manual_seed(seed))[0]
    return {"x": split.train_x[idx], "target": split.train_y[idx], "idx": idx}


def test_critic_step_changes_only_the_critic(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir)
    b = _batch(m)
    x, a = b["x"][0], m.data.class_embeddings[b["target"][0]]
    with torch.no_grad():
        fake = m.generate(m.sample_noise(len(a)), a)
    before = snapshot_nets(m, NETS)
    m.manual_step("d", lambda: m.critic_loss(x, a, fake)[0])
    assert changed_nets(m, before) == {"discriminator"}


@pytest.mark.parametrize("sml,rml,expected", [
    (True, True, {"generator", "encoder", "regressor", "relation"}),  # full model
    (False, False, {"generator"}),  # (a) plain generation
    (True, False, {"generator", "encoder", "regressor"}),  # (b) + SML
    (False, True, {"generator", "encoder", "relation"}),  # (c) + RML
])
def test_joint_step_changes_exactly_the_networks_in_use(tmp_path, cache_dir, sml, rml, expected):
    m = _bound(tmp_path, cache_dir, [f"method.use_sml={sml}", f"method.use_rml={rml}"])
    b = _batch(m)
    before = snapshot_nets(m, NETS)
    m.manual_step(m.joint_roles, lambda: m.joint_loss(b["x"][-1], b["target"][-1], b["idx"][-1])[0])
    assert changed_nets(m, before) == expected
    assert all(p.requires_grad for n in NETS for p in getattr(m, n).parameters())  # un-frozen afterwards
    # E refines the classifier's features exactly when a metric loss trains it (ablation a: no E)
    assert (m.feature_transform() is m.encoder) == (sml or rml)


def test_full_training_step_updates_every_network(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir)
    before = snapshot_nets(m, NETS)
    m.training_step(_batch(m), 0)
    assert changed_nets(m, before) == set(NETS)
    steps = [max(int(s["step"]) for s in o.state.values()) for o in m.optimizers()]
    assert steps == [5, 1, 1, 1, 1]  # n_critic critic updates, then one joint update


def _grads(m, mode_batch, seed=0):
    x, y, idx = mode_batch
    for n in NETS:
        getattr(m, n).zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    m.joint_loss(x, y, idx)[0].backward()
    return {n: torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in getattr(m, n).parameters()]) for n in NETS}


def test_synthetic_features_train_only_the_generator_in_generator_mode(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir)
    b = _batch(m)
    args = (b["x"][-1], b["target"][-1], b["idx"][-1])
    grads = {}
    for mode in ("none", "generator", "joint"):
        m.synthetic_metric = mode
        grads[mode] = _grads(m, args)
    # same random draws: the synthetic term of `generator` mode adds nothing to E, R, F ...
    for n in ("encoder", "regressor", "relation"):
        assert torch.allclose(grads["generator"][n], grads["none"][n], atol=1e-7)
        assert not torch.allclose(grads["joint"][n], grads["none"][n], atol=1e-6)
    # ... but it does reach G (in `none` mode G sees only the critic)
    assert not torch.allclose(grads["generator"]["generator"], grads["none"]["generator"], atol=1e-6)
    assert torch.allclose(grads["generator"]["generator"], grads["joint"]["generator"], atol=1e-6)


def test_in_episode_partners_are_a_positive_and_a_negative(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir, ["method.sampler.n_way=4", "method.sampler.k_shot=3"])
    b = _batch(m)
    y, idx = b["target"][-1], b["idx"][-1]
    seen_pos = torch.zeros(len(y), len(y), dtype=torch.bool)
    for seed in range(30):
        torch.manual_seed(seed)
        p = m.sample_partners(y, idx)
        assert set(p) == {"pos_b", "neg_b"}
        rows = torch.arange(len(y))
        assert (y[p["pos_b"]] == y).all() and (p["pos_b"] != rows).all()
        assert (y[p["neg_b"]] != y).all()
        seen_pos[rows, p["pos_b"]] = True
    # every other row of the anchor's class gets drawn (random, not a fixed neighbour)
    assert torch.equal(seen_pos, (y[:, None] == y[None, :]) & ~torch.eye(len(y), dtype=torch.bool))


@pytest.mark.parametrize("extra", [["method.rml_pairs=split"],
                                   ["method.sampler.n_way=1", "method.sampler.k_shot=8"],  # FLO's 1-32
                                   ["method.sampler.n_way=8", "method.sampler.k_shot=1"]])
def test_partners_from_the_training_split(tmp_path, cache_dir, extra):
    m = _bound(tmp_path, cache_dir, extra)
    b = _batch(m)
    y, idx = b["target"][-1], b["idx"][-1]
    train_y = m.data.train_y
    for seed in range(10):
        torch.manual_seed(seed)
        p = m.sample_partners(y, idx)
        assert set(p) == {"pos_s", "neg_s"}
        assert (train_y[p["pos_s"]] == y).all() and (p["pos_s"] != idx).all()  # never the anchor itself
        assert (train_y[p["neg_s"]] != y).all()
        assert set(train_y[p["neg_s"]].tolist()) <= set(m.data.seen_classes.tolist())
    loss, info = m.joint_loss(*(t[-1] for t in (b["x"], b["target"], b["idx"])))
    assert torch.isfinite(loss) and "loss_rm" in info


def test_infonce_candidates_are_the_split_classes(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir)  # dev split: train classes + validation classes, never test classes
    split = m.data
    cand = set(m._sm_candidates.tolist())
    assert cand == set(split.seen_classes.tolist()) | set(split.unseen_classes.tolist())
    assert len(cand) < split.class_embeddings.shape[0]
    m2 = _bound(tmp_path, cache_dir, ["method.sm_classes=seen"])
    assert set(m2._sm_candidates.tolist()) == set(split.seen_classes.tolist())


@pytest.mark.parametrize("override,match", [
    ("method.synthetic_metric=always", "synthetic_metric"),
    ("method.sm_classes=unseen", "sm_classes"),
    ("method.rml_pairs=global", "rml_pairs"),
    ("method.similarity_target=abs", "similarity_target"),
    ("method.temperature=0", "temperature"),
    ("method.sm_weight=-1", "sm_weight"),
    ("method.regressor.in_dims=[7]", "regressor"),
    ("method.relation.dim=7", "relation"),
    ("method.optimizer_f=null", "optimizer"),
])
def test_bad_method_settings_raise_config_errors(tmp_path, cache_dir, override, match):
    cfg = compose_cfg(["method=vs_boost", override], tmp_path, cache_dir)
    dm = build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    with pytest.raises(ConfigError, match=match):
        build_method(cfg)


def test_too_many_ways_is_a_clear_error_with_exit_code_2(tmp_path, cache_dir, capsys):
    from zsl_lightning.pipeline import main_entry

    cfg = shrink(compose_cfg(["method=vs_boost", "method.sampler.n_way=500", "method.epochs=1"], tmp_path, cache_dir))
    with pytest.raises(SystemExit) as e:
        main_entry(cfg)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "n_way=500" in err and "Traceback" not in err


def test_constructor_config_errors_reach_the_user_unwrapped(tmp_path, cache_dir, capsys):
    # Hydra wraps constructor exceptions in InstantiationException; the pipeline unwraps ZSLErrors
    from zsl_lightning.pipeline import main_entry

    for override, text in (("method.temperature=-1", "temperature"), ("method.sampler.k_shot=0", "k_shot=0")):
        with pytest.raises(SystemExit) as e:
            main_entry(compose_cfg(["method=vs_boost", override], tmp_path, cache_dir))
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert text in err and "InstantiationException" not in err


def test_interrupted_run_resumes_exactly(tmp_path, cache_dir):
    """Five optimizers, episodes and random partners: a crashed + resumed run equals an uninterrupted one."""
    from zsl_lightning.pipeline import run

    def cfg(out, extra=()):
        return shrink(compose_cfg(["method=vs_boost", "method.epochs=3", "eval.select=last", "eval.every=3",
                                   "eval.syn_num=10", "eval.classifier.epochs=2", "+trainer.limit_train_batches=4",
                                   *extra], out, cache_dir), 16)

    ref = run(cfg(tmp_path / "ref"))
    crash = ["+callbacks.crash._target_=tests.helpers.CrashAtEpochStart", "+callbacks.crash.epoch=2"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cfg(tmp_path / "run", crash))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert len(ckpt["optimizer_states"]) == 5
    resumed = run(cfg(tmp_path / "run"))
    assert resumed["headline"] == ref["headline"]
