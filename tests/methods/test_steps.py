"""Each manual optimizer step changes only its own network."""

import pytest
import torch

from tests.helpers import bound_method, changed, snapshot


def _batch(m, dm):
    split = m.data
    g = torch.Generator().manual_seed(0)
    idx = m.batch_plan.sample(split.train_y, g)[0]
    return {"x": split.train_x[idx], "target": split.train_y[idx], "idx": idx}


@pytest.mark.parametrize("method", ["clswgan", "vaegan"])
def test_critic_step_changes_only_critic(method, tmp_path, cache_dir):
    m, dm = bound_method([f"method={method}"], tmp_path, cache_dir)
    batch = _batch(m, dm)
    x, a = batch["x"][0], m.data.class_embeddings[batch["target"][0]]
    nets = {n: getattr(m, n) for n in ("generator", "discriminator", "encoder") if hasattr(m, n)}
    before = {n: snapshot(v) for n, v in nets.items()}
    with torch.no_grad():
        fake = m.generate(m.sample_noise(len(a)), a)
    m.manual_step("d", lambda: m.critic_loss(x, a, fake)[0])
    assert changed(before["discriminator"], m.discriminator)
    for n in nets:
        if n != "discriminator":
            assert not changed(before[n], nets[n]), f"{n} changed during the critic step"
            assert all(p.grad is None for p in nets[n].parameters()), f"{n} received gradients"


def test_clswgan_generator_step_changes_only_generator(tmp_path, cache_dir):
    m, dm = bound_method(["method=clswgan"], tmp_path, cache_dir)
    batch = _batch(m, dm)
    y = batch["target"][-1]
    before_d, before_g, before_c = snapshot(m.discriminator), snapshot(m.generator), snapshot(m.seen_classifier)
    m.manual_step("g", lambda: m.generator_loss(m.condition(y), y)[0])
    assert changed(before_g, m.generator)
    assert not changed(before_d, m.discriminator)
    assert not changed(before_c, m.seen_classifier)  # the pre-trained classifier stays frozen
    assert all(p.requires_grad for p in m.discriminator.parameters())  # un-frozen again afterwards


def test_vaegan_encoder_generator_step_leaves_critic(tmp_path, cache_dir):
    m, dm = bound_method(["method=vaegan"], tmp_path, cache_dir)
    batch = _batch(m, dm)
    x, a = batch["x"][-1], m.data.class_embeddings[batch["target"][-1]]
    before = {n: snapshot(getattr(m, n)) for n in ("encoder", "generator", "discriminator")}
    m.manual_step(("e", "g"), lambda: m.vae_gan_loss(x, a)[0])
    assert changed(before["encoder"], m.encoder)
    assert changed(before["generator"], m.generator)
    assert not changed(before["discriminator"], m.discriminator)


def test_full_training_step_updates_all_networks(tmp_path, cache_dir):
    m, dm = bound_method(["method=clswgan"], tmp_path, cache_dir)
    before_d, before_g = snapshot(m.discriminator), snapshot(m.generator)
    m.training_step(_batch(m, dm), 0)
    assert changed(before_d, m.discriminator) and changed(before_g, m.generator)


def test_clswgan_pretrained_classifier_is_trained_on_seen_only(tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan"], tmp_path, cache_dir)
    split = m.data
    assert bool(m.classifier_ready)
    pred = split.seen_classes[m.seen_logits(split.test_seen_x).argmax(1)]
    acc = (pred == split.test_seen_y).float().mean().item()
    assert acc > 5.0 / len(split.seen_classes)  # far above chance on held-out seen images
