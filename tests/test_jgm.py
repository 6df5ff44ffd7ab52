"""Gao et al.'s joint generative model: losses by hand, step isolation, the C_s + 1 categorizer,
the synthesis count, every Table 3 variant, the Fig. 3 sweep plot and the Fig. 4 embedding plot."""

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import open_dict

from tests.helpers import compose_cfg, shrink
from zsl_lightning.losses.gan import standard_gan_discriminator_loss
from zsl_lightning.losses.jgm import categorizer_loss, perceptual_loss
from zsl_lightning.pipeline import build_datamodule, build_method, run

VARIANTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "variant").glob("jgm_*.yaml"))


# ------------------------------------------------------------------------------------------ losses
def test_categorizer_loss_sends_fakes_to_the_extra_class():
    real = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # C_s = 2 real classes + fake (index 2)
    fake = torch.tensor([[0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1])
    expected = (-(F.log_softmax(real, 1)[[0, 1], [0, 1]]).mean()) + (-(F.log_softmax(fake, 1)[0, 2]))
    assert categorizer_loss(real, y, [fake], fake_class=2) == pytest.approx(expected.item(), rel=1e-6)
    # a fake classified as a real class costs more than one classified as fake
    wrong = torch.tensor([[3.0, 0.0, 0.0]])
    assert categorizer_loss(real, y, [wrong], 2) > categorizer_loss(real, y, [fake], 2)


def test_perceptual_loss_is_the_squared_l2_distance_averaged_over_the_batch():
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert perceptual_loss(a, b).item() == pytest.approx((4.0 + 25.0) / 2)


def test_standard_gan_discriminator_loss_matches_eq7():
    d_real, d_f, d_p = torch.tensor([0.5]), torch.tensor([-1.0]), torch.tensor([2.0])
    sig = torch.sigmoid
    expected = -torch.log(sig(d_real)) - torch.log(1 - sig(d_f)) - torch.log(1 - sig(d_p))
    assert standard_gan_discriminator_loss(d_real, [d_f, d_p]).item() == pytest.approx(expected.item(), rel=1e-5)


# ------------------------------------------------------------------------------------------ the module
def _bound(tmp_path, cache_dir, split="dev", extra=()):
    cfg = shrink(compose_cfg(["method=jgm", "method.pretrain_categorizer.epochs=1", *extra], tmp_path, cache_dir))
    dm = build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    m = build_method(cfg)
    dm.use(split, m.batch_plan)
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_train_batches=0, accelerator="cpu").fit(m, datamodule=dm)
    return m


def _batch(m):
    idx = m.batch_plan.sample(m.data.train_y, torch.Generator().manual_seed(0))[0]
    return m.data.train_x[idx][0], m.data.train_y[idx][0]


def _snap(net):
    return [p.detach().clone() for p in net.parameters()]


def _changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("role,net", [("e", "encoder"), ("g", "generator"), ("d", "discriminator"),
                                      ("c", "categorizer")])
def test_each_step_changes_only_its_own_network(role, net, tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir)
    x, y = _batch(m)
    a, yl = m.data.class_embeddings[y], m.local_labels(y)
    eps, z_p = torch.randn(len(x), m.noise_dim), torch.randn(len(x), m.noise_dim)
    with torch.no_grad():
        o = m._forward(x, a, eps, z_p)
    loss_fn = {
        "e": lambda: m.encoder_loss(x, a, eps, z_p)[0],
        "g": lambda: m.generator_loss(x, a, yl, eps, z_p)[0],
        "d": lambda: m.discriminator_loss(x, a, [o["x_p"], o["x_f"]]),
        "c": lambda: m.categorizer_loss(x, yl, [o["x_p"], o["x_f"]]),
    }[role]
    nets = {n: getattr(m, n) for n in ("encoder", "generator", "discriminator", "categorizer")}
    before = {n: _snap(v) for n, v in nets.items()}
    m.manual_step(role, loss_fn)
    for n, v in nets.items():
        assert _changed(before[n], v) == (n == net), f"{n} after the {role} step"


def test_categorizer_has_cs_plus_one_outputs_in_each_phase(tmp_path, cache_dir):
    dev = _bound(tmp_path, cache_dir, "dev")
    test = _bound(tmp_path, cache_dir, "test")
    assert dev.categorizer.out_dim == len(dev.data.seen_classes) + 1 == 64 + 1
    assert test.categorizer.out_dim == len(test.data.seen_classes) + 1 == 80 + 1
    assert test.fake_class == 80


def test_categorizer_step_pushes_fakes_to_the_fake_class(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir)
    x, y = _batch(m)
    a, yl = m.data.class_embeddings[y], m.local_labels(y)
    with torch.no_grad():
        o = m._forward(x, a, torch.randn(len(x), m.noise_dim), torch.randn(len(x), m.noise_dim))
    fakes = [o["x_p"], o["x_f"]]

    def p_fake():
        with torch.no_grad():
            return F.softmax(m.categorizer(torch.cat(fakes)), 1)[:, m.fake_class].mean().item()

    before = p_fake()
    for _ in range(5):
        m.manual_step("c", lambda: m.categorizer_loss(x, yl, fakes))
    assert p_fake() > before


def test_number_of_generated_features_follows_k_and_the_data(tmp_path, cache_dir):
    m = _bound(tmp_path, cache_dir, "test", ["method.syn_multiplier.zsl=8", "method.syn_multiplier.gzsl=6"])
    split = m.data
    n_unseen_images, n_unseen = len(split.test_unseen_y), len(split.unseen_classes)
    assert m.num_synthetic(split, "zsl") == math.ceil(8 * n_unseen_images / n_unseen)
    assert m.num_synthetic(split, "gzsl") == math.ceil(6 * n_unseen_images / n_unseen)
    x, y = m.classifier_training_data(split, "zsl")
    assert len(y) == n_unseen * m.num_synthetic(split, "zsl")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_table3_variant_runs_from_its_config(variant, tmp_path, cache_dir):
    cfg = shrink(compose_cfg(["method=jgm", f"variant={variant}", "method.epochs=1", "eval.select=last",
                              "method.pretrain_categorizer.epochs=1", "eval.classifier.epochs=1",
                              "method.syn_multiplier.zsl=0.2", "method.syn_multiplier.gzsl=0.2"],
                             tmp_path, cache_dir))
    res = run(cfg)
    assert set(res["headline"]) == {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_H"}
    flags = {k: cfg.method[k] for k in ("use_cvae", "use_cgan", "use_categorizer", "use_percept")}
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert len(ckpt["optimizer_states"]) == 1 + flags["use_cvae"] + flags["use_cgan"] + flags["use_categorizer"]


def test_fig3_sweep_writes_a_plot(tmp_path, cache_dir):
    from sweep.plot_fig3 import main as plot_main

    for i, k in enumerate((1, 2)):
        out = tmp_path / "multirun" / str(i)
        cfg = shrink(compose_cfg(["experiment=jgm_fig3", "data=synthetic", f"fig3_k={k}", "method.epochs=1",
                                  "eval.select=last", "method.pretrain_categorizer.epochs=1",
                                  "eval.classifier.epochs=1"], out, cache_dir))
        assert cfg.method.syn_multiplier.zsl == k
        run(cfg)
    assert plot_main([str(tmp_path / "multirun")]) == 0
    png = tmp_path / "multirun" / "fig3.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_feature_embedding_plot_callback(method, tmp_path, cache_dir):
    cfg = shrink(compose_cfg(["method=jgm", "callbacks=tsne", f"callbacks.feature_plot.method={method}",
                              "callbacks.feature_plot.per_class=10", "callbacks.feature_plot.max_classes=3",
                              "method.epochs=1", "eval.select=last", "method.pretrain_categorizer.epochs=1",
                              "eval.classifier.epochs=1", "trainer.enable_progress_bar=false"],
                             tmp_path, cache_dir))
    run(cfg)
    png = tmp_path / "plots" / f"features_{method}_test.png"
    assert png.is_file() and png.stat().st_size > 1000
