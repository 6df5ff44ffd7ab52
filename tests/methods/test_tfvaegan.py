"""tf-VAEGAN (method=tfvaegan): the feedback generator, the semantic loss, step isolation per optimizer role,
the feedback's effect, equivalence to f-VAEGAN with feedback and decoder off, and learning."""

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import bound_method, compose_cfg
from zsl_lightning.errors import ConfigError
from zsl_lightning.losses.semantic import semantic_reconstruction_loss
from zsl_lightning.nn.mlp import MLP
from zsl_lightning.nn.tfvaegan import FeedbackGenerator

NETS = ("encoder", "generator", "discriminator", "decoder", "feedback")


def _snapshot(m):
    return {n: [p.detach().clone() for p in getattr(m, n).parameters()] for n in NETS if hasattr(m, n)}


def _changed(before, m):
    return {n for n, ps in before.items()
            if any(not torch.equal(a, b) for a, b in zip(ps, getattr(m, n).parameters(), strict=True))}


def _batch(m, seed=0):
    split = m.data
    idx = m.batch_plan.sample(split.train_y, torch.Generator().manual_seed(seed))[0]
    return {"x": split.train_x[idx], "target": split.train_y[idx], "idx": idx}


@pytest.fixture
def tf(tmp_path, cache_dir):
    return bound_method(["method=tfvaegan"], tmp_path, cache_dir)[0]


# ---------------------------------------------------------------------------- networks and loss
def test_feedback_generator_adds_feedback_to_last_hidden_layer():
    torch.manual_seed(0)
    g = FeedbackGenerator([2, 1], [3], 2, out_activation="sigmoid")
    z, a, fb = torch.randn(4, 2), torch.randn(4, 1), torch.randn(4, 3)
    lin1, lin2 = g.body[0], g.head
    h = F.leaky_relu(torch.cat([z, a], 1) @ lin1.weight.T + lin1.bias, 0.2)
    assert torch.allclose(g(z, a, feedback=fb), torch.sigmoid((h + fb) @ lin2.weight.T + lin2.bias), atol=1e-6)
    plain = MLP([2, 1], [3], 2, out_activation="sigmoid")
    plain.load_state_dict(g.state_dict())
    assert torch.equal(g(z, a), plain(z, a))  # no feedback = f-VAEGAN's generator


def test_semantic_reconstruction_loss_hand_computed():
    pred, target = torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.zeros(2, 2)
    # weighted L1 (released): sum |d|^3 / ||d||_2 per row -> (27 + 64) / 5 = 18.2 and 1; batch mean 9.6
    assert semantic_reconstruction_loss(pred, target).item() == pytest.approx(9.6)
    assert semantic_reconstruction_loss(pred, target, "l1").item() == pytest.approx(4.0)  # (7 + 1) / 2
    assert semantic_reconstruction_loss(target, target).item() == 0.0  # no 0/0


# ---------------------------------------------------------------------------- step isolation
def test_critic_step_changes_only_critic(tf):
    b = _batch(tf)
    x, a = b["x"][0], tf.data.class_embeddings[b["target"][0]]
    with torch.no_grad():
        fake = tf.generate(tf.sample_noise(len(a)), a)
    before = _snapshot(tf)
    tf.manual_step("d", lambda: tf.critic_loss(x, a, fake)[0])
    assert _changed(before, tf) == {"discriminator"}


def test_decoder_step_on_real_features_changes_only_decoder(tf):
    b = _batch(tf)
    before = _snapshot(tf)
    parts = {}
    tf.before_critic_batch(b["x"][0], tf.condition(b["target"][0]), parts)
    assert _changed(before, tf) == {"decoder"} and "loss_dec_real" in parts


@pytest.mark.parametrize("feedback_pass, freeze_dec, expected", [
    (False, False, {"encoder", "generator", "decoder"}),
    (True, False, {"encoder", "generator", "decoder", "feedback"}),
    (True, True, {"encoder", "generator", "feedback"}),
])
def test_generator_side_step_changes_only_its_roles(tf, feedback_pass, freeze_dec, expected):
    tf.freeze_dec = freeze_dec
    b = _batch(tf)
    x, cond = b["x"][-1], tf.condition(b["target"][-1])
    before = _snapshot(tf)
    tf.delta = tf.a1 if feedback_pass else 0.0
    tf.manual_step(tf.generator_roles(feedback_pass), lambda: tf.tf_vaegan_loss(x, cond)[0])
    assert _changed(before, tf) == expected
    assert all(p.requires_grad for n in NETS for p in getattr(tf, n).parameters())  # un-frozen afterwards


def test_training_step_runs_both_passes_and_updates_every_network(tf):
    before = _snapshot(tf)
    tf.training_step(_batch(tf), 0)
    assert _changed(before, tf) == set(NETS)
    assert tf.delta == 0.0  # the pass's δ does not leak out of the step


def test_sampler_must_hold_both_passes(tmp_path, cache_dir):
    with pytest.raises(ConfigError, match="batches_per_step"):
        bound_method(["method=tfvaegan", "method.sampler.batches_per_step=5"], tmp_path, cache_dir)


# ---------------------------------------------------------------------------- feedback
def _strong_feedback(tf):
    """At initialisation F's output is ~1e-4; a bias of 1 on its last layer makes the feedback visible."""
    with torch.no_grad():
        tf.feedback.head.bias.fill_(1.0)


def test_feedback_changes_the_second_pass_only_when_on(tf):
    _strong_feedback(tf)
    a = tf.data.class_embeddings[:6]
    z = torch.randn(6, tf.noise_dim)
    with torch.no_grad():
        plain = tf.generator(z, a)
        tf.delta = 0.0
        assert torch.equal(tf.generate(z, a), plain)
        tf.delta = 0.5
        fb = tf.generate(z, a)
        tf.delta = 0.0
        _, h = tf.decoder.forward_with_hidden(plain)  # Eq. 5: g_l + δ F(h(G(z, a)))
        expected = tf.generator(z, a, feedback=0.5 * tf.feedback(h))
    assert torch.equal(fb, expected)
    assert (fb - plain).abs().max() > 1e-3


def test_synthesis_uses_feedback_a2(tf):
    _strong_feedback(tf)
    emb = tf.data.class_embeddings[:3]
    torch.manual_seed(5)
    with_fb = tf.synthesize(emb, 4)
    tf.synthesis_feedback = False
    torch.manual_seed(5)
    without = tf.synthesize(emb, 4)
    torch.manual_seed(5)
    with torch.no_grad():
        direct = tf.generator(torch.randn(12, tf.noise_dim), emb.repeat_interleave(4, 0))
    assert torch.allclose(without, direct)
    assert (with_fb - without).abs().max() > 1e-3
    tf.synthesis_feedback, tf.a2 = True, 0.0
    torch.manual_seed(5)
    assert torch.allclose(tf.synthesize(emb, 4), direct)  # δ = a2 = 0: no feedback


def test_classifier_sees_decoder_features(tf):
    x = tf.data.train_x[:5]
    out = tf.feature_transform()(x)
    assert out.shape[1] == x.shape[1] + tf.decoder.out_dim + tf.decoder.hidden_width
    assert torch.equal(out[:, : x.shape[1]], x)
    assert torch.allclose(out[:, x.shape[1]: x.shape[1] + tf.decoder.out_dim].norm(dim=1), torch.ones(5))
    tf.decoder_features = False
    assert tf.feature_transform() is None


# ---------------------------------------------------------------------------- f-VAEGAN = feedback and decoder off
def test_without_feedback_and_decoder_weight_it_is_f_vaegan(tmp_path, cache_dir):
    off = ["method.feedback_loop=1", "method.sampler.batches_per_step=5", "method.recons_weight=0"]
    torch.manual_seed(0)
    tf, _ = bound_method(["method=tfvaegan", *off], tmp_path / "tf", cache_dir)
    torch.manual_seed(0)
    fv, _ = bound_method(["method=vaegan", "method.adaptive_gp=true"], tmp_path / "fv", cache_dir)
    for n in ("encoder", "generator", "discriminator"):  # same initial weights (init order e, g, d first)
        assert all(torch.equal(p, q) for p, q in zip(getattr(tf, n).parameters(), getattr(fv, n).parameters(),
                                                     strict=True)), n
    b = _batch(tf)
    x, cond = b["x"][-1], tf.condition(b["target"][-1])
    torch.manual_seed(3)
    loss_tf, info_tf = tf.tf_vaegan_loss(x, cond)
    torch.manual_seed(3)
    loss_fv, info_fv = fv.vae_gan_loss(x, cond)
    assert torch.equal(loss_tf, loss_fv) and info_tf.keys() == info_fv.keys()
    torch.manual_seed(4)
    tf.training_step(b, 0)
    torch.manual_seed(4)
    fv.training_step(b, 0)
    for n in ("encoder", "generator", "discriminator"):
        assert all(torch.equal(p, q) for p, q in zip(getattr(tf, n).parameters(), getattr(fv, n).parameters(),
                                                     strict=True)), n
    assert torch.equal(tf.lambda_gp, fv.lambda_gp)


# ---------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_tfvaegan_beats_eszsl_on_the_embedded_benchmark(tmp_path, cache_dir):
    from zsl_lightning.pipeline import run

    res = run(compose_cfg(["method=tfvaegan", "eval.select=last"], tmp_path / "tf", cache_dir))["headline"]
    eszsl = run(compose_cfg(["method=eszsl", "eval.select=last"], tmp_path / "es", cache_dir))["headline"]
    assert res["zsl_t1"] >= eszsl["zsl_t1"] + 10.0, (res, eszsl)
    assert res["gzsl_H"] >= eszsl["gzsl_H"] + 10.0, (res, eszsl)
    assert res["gzsl_u"] > 10.0 and res["gzsl_s"] > 30.0, res  # neither side collapses


# ---------------------------------------------------------------------------- presets of the released scripts
@pytest.mark.parametrize("data, expected", [
    ("cub", {"epochs": 300, "recons_weight": 0.01, "a1": 1.0, "a2": 1.0, "fake_noise": "encoded", "lr": 1e-4,
             "feed_lr": 1e-5, "freeze_dec": False, "syn_num": 300}),
    ("awa2", {"epochs": 120, "recons_weight": 0.1, "a1": 0.01, "a2": 0.01, "fake_noise": "encoded", "lr": 1e-5,
              "feed_lr": 1e-4, "freeze_dec": True, "syn_num": 1800}),
    ("awa1", {"epochs": 120, "recons_weight": 0.1, "a1": 0.01, "a2": 0.01, "fake_noise": "encoded", "lr": 1e-5,
              "feed_lr": 1e-4, "freeze_dec": True, "syn_num": 1800}),
    ("flo", {"epochs": 500, "recons_weight": 0.01, "a1": 0.5, "a2": 0.5, "fake_noise": "prior", "lr": 1e-4,
             "feed_lr": 1e-5, "freeze_dec": False, "syn_num": 1200}),
    ("sun", {"epochs": 400, "recons_weight": 0.01, "a1": 0.1, "a2": 0.01, "fake_noise": "encoded", "lr": 1e-3,
             "feed_lr": 1e-4, "freeze_dec": False, "syn_num": 400}),
])
def test_presets_hold_the_released_scripts(data, expected, tmp_path):
    cfg = compose_cfg(["method=tfvaegan", f"data={data}", "paths.data_dir=/data"], tmp_path)
    m = cfg.method
    got = {"epochs": m.epochs, "recons_weight": m.recons_weight, "a1": m.a1, "a2": m.a2, "fake_noise": m.fake_noise,
           "lr": m.optimizer_g.lr, "feed_lr": m.optimizer_fb.lr, "freeze_dec": m.freeze_dec,
           "syn_num": cfg.eval.syn_num}
    assert got == expected
    assert m.feedback_loop == 2 and m.optimizer_dec.lr == 1e-4 and m.adaptive_gp
    assert cfg.data.embedding_norm == "l2"  # the released loader re-normalises the attributes
    assert m.sampler.batches_per_step == m.n_critic * m.feedback_loop
