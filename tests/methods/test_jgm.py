"""Gao et al.'s joint generative model: Eqs. 4-14 by hand (tiny fixed-weight networks), one real training
step (each optimizer once, own network only), the C_s + 1 categorizer, the synthesis count and the final
classifier's batch, every Table 3 variant, the Fig. 3 sweep plot (Hydra callback) and the Fig. 4 plot."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict

from tests.helpers import CONF, ROOT, bound_method, changed, compose_cfg, shrink, snapshot
from tests.report.helpers import LOGGER_CASES, sweep_config
from zsl_lightning.losses.gan import standard_gan_discriminator_loss
from zsl_lightning.losses.jgm import categorizer_loss, perceptual_loss
from zsl_lightning.pipeline import build_datamodule, build_method, run

VARIANTS = sorted(p.stem for p in (CONF / "variant").glob("jgm_*.yaml"))


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


# ------------------------------------------------------------------------------------------ Eqs. 4-14 by hand
# A JGM of tiny MLPs (one hidden layer of 2 units) with fixed, known weights; each loss is recomputed
# here straight from the paper's equation with explicit matrix algebra, without the module's loss code.
FEAT, ATT, LAT, HID, N_SEEN = 3, 2, 2, 2, 2  # C has N_SEEN + 1 = 3 outputs; the fake class is index 2


def _known(shape, k):
    """Deterministic weights without an RNG: a sine wave with a different phase per tensor."""
    return 0.8 * torch.sin(1.3 * torch.arange(math.prod(shape), dtype=torch.float64) + k).reshape(shape)


def _tiny_jgm(alpha=0.3, beta=0.7, **kw):
    """α and β differ from each other and from the paper's values, so a swapped or dropped weight shows."""
    from functools import partial

    from zsl_lightning.methods.jgm import JGM
    from zsl_lightning.nn.mlp import MLP, GaussianEncoder

    sgd = partial(torch.optim.SGD, lr=0.1)
    m = JGM(encoder=GaussianEncoder([FEAT, ATT], [HID], LAT),
            generator=MLP([LAT, ATT], [HID], FEAT, out_activation="sigmoid"),
            discriminator=MLP([FEAT], [HID], 1), categorizer=partial(MLP, in_dims=[FEAT], hidden=[HID]),
            optimizer_e=sgd, optimizer_g=sgd, optimizer_d=sgd, optimizer_c=sgd, noise_dim=LAT,
            alpha=alpha, beta=beta, **kw)
    m.categorizer = m._make_categorizer(out_dim=N_SEEN + 1)
    known = {}
    with torch.no_grad():
        for k, net in enumerate(("encoder", "generator", "discriminator", "categorizer")):
            for i, p in enumerate(getattr(m, net).parameters()):
                p.copy_(_known(p.shape, 10 * k + i))
            known[net] = [p.detach().clone() for p in getattr(m, net).parameters()]
    return m, known


def _tiny_inputs():
    x = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.7, 0.4]])  # MinMax-scaled features in [0, 1]
    a = torch.tensor([[1.0, 0.0], [0.3, 0.8]])
    y = torch.tensor([0, 1])  # local seen-class indices
    eps = torch.tensor([[0.5, -1.0], [1.5, 0.2]])
    z_p = torch.tensor([[-0.7, 0.4], [0.9, -1.2]])
    return x, a, y, eps, z_p


def _mlp(w, *inputs):
    """Linear → LeakyReLU(0.2) → Linear, weights ``w = [W1, b1, W2, b2]``; returns (output, hidden)."""
    pre = torch.cat(inputs, 1) @ w[0].T + w[1]
    h = torch.where(pre > 0, pre, 0.2 * pre)
    return h @ w[2].T + w[3], h


def _reference(w, x, a, y, eps, z_p, alpha, beta, fake_class):
    """Eqs. 4-9 and the four updates of Eqs. 11-14, in float64, from the weights ``w`` of E, G, D, C."""
    w = {k: [t.detach().double() for t in v] for k, v in w.items()}
    x, a, eps, z_p = x.double(), a.double(), eps.double(), z_p.double()
    enc = _mlp(w["encoder"], x, a)[0]
    mu, logvar = enc[:, : eps.shape[1]], enc[:, eps.shape[1]:]
    x_f = torch.sigmoid(_mlp(w["generator"], mu + eps * torch.exp(0.5 * logvar), a)[0])  # Eqs. 1-2
    x_p = torch.sigmoid(_mlp(w["generator"], z_p, a)[0])

    def d(v):
        return _mlp(w["discriminator"], v)

    def c(v):
        return _mlp(w["categorizer"], v)

    def minus_log_d(v):  # −E[log p_D(v)], p_D = σ(logit)
        return -torch.log(torch.sigmoid(d(v)[0])).mean()

    def minus_log_not_d(v):  # −E[log(1 − p_D(v))]
        return -torch.log(1 - torch.sigmoid(d(v)[0])).mean()

    def minus_log_c(v, target):  # −E[log p_C(target | v)], p_C = softmax
        p = torch.softmax(c(v)[0], 1)
        return -torch.log(p[torch.arange(len(v)), target]).mean()

    fake = torch.full_like(y, fake_class)
    kl = (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean()  # Eq. 4
    recon = -(x * torch.log(x_f) + (1 - x) * torch.log(1 - x_f)).sum(1).mean()  # Eq. 5, Bernoulli
    percept = (((d(x)[1] - d(x_f)[1]) ** 2).sum(1).mean()
               + ((c(x)[1] - c(x_f)[1]) ** 2).sum(1).mean())  # Eq. 9
    l_g = minus_log_d(x_p) + minus_log_d(x_f) + minus_log_c(x_p, y) + minus_log_c(x_f, y)  # Eq. 6
    return {
        "l_g": l_g,
        "e": kl + recon + beta * percept,  # Eq. 11
        "g": recon + alpha * l_g + beta * percept,  # Eq. 12
        "d": minus_log_d(x) + minus_log_not_d(x_f) + minus_log_not_d(x_p),  # Eqs. 7 / 13
        "c": minus_log_c(x, y) + minus_log_c(x_p, fake) + minus_log_c(x_f, fake),  # Eqs. 8 / 14
    }


def _close(got, want):
    assert float(torch.as_tensor(got).detach()) == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def test_tiny_reference_terms_are_all_significant():
    """Guards the hand-computed tests below: every term they pin moves the total by far more than the
    tolerance, so dropping or retargeting one of them cannot pass unnoticed."""
    m, w = _tiny_jgm()
    x, a, y, eps, z_p = _tiny_inputs()
    ref = _reference(w, x, a, y, eps, z_p, m.alpha, m.beta, m.fake_class)
    no_percept = _reference(w, x, a, y, eps, z_p, m.alpha, 0.0, m.fake_class)
    for k in ("e", "g"):
        assert abs(ref[k] - no_percept[k]) > 1e-2
    assert m.alpha * ref["l_g"] > 1e-2


def test_generator_loss_is_eq12_with_eq6_on_both_fakes():
    """Eq. 12 = L_recon + α L_G + β L_percept; Eq. 6: x_p AND x_f must fool D and be classified as y_s."""
    m, w = _tiny_jgm()
    x, a, y, eps, z_p = _tiny_inputs()
    loss, parts = m.generator_loss(x, a, y, eps, z_p)
    ref = _reference(w, x, a, y, eps, z_p, m.alpha, m.beta, m.fake_class)
    _close(parts["loss_gan_g"], ref["l_g"])
    _close(loss, ref["g"])


def test_encoder_loss_is_eq11_kl_recon_and_weighted_percept():
    """Eq. 11 = L_KL + L_recon + β L_percept (Eq. 9 on the last hidden layers of D and C)."""
    m, w = _tiny_jgm()
    x, a, y, eps, z_p = _tiny_inputs()
    loss, parts = m.encoder_loss(x, a, eps, z_p)
    ref = _reference(w, x, a, y, eps, z_p, m.alpha, m.beta, m.fake_class)
    _close(loss, ref["e"])
    assert set(parts) == {"loss_kl", "loss_recon", "loss_percept"}


def test_discriminator_loss_is_eq7_real_against_both_fakes():
    """Eq. 7, standard GAN BCE: −log D(x_s) − log(1 − D(x_f)) − log(1 − D(x_p))."""
    m, w = _tiny_jgm()
    x, a, y, eps, z_p = _tiny_inputs()
    with torch.no_grad():
        o = m._forward(x, a, eps, z_p)
    ref = _reference(w, x, a, y, eps, z_p, m.alpha, m.beta, m.fake_class)
    _close(m.discriminator_loss(x, a, [o["x_p"], o["x_f"]]), ref["d"])


def test_categorizer_loss_is_eq8_real_to_class_fakes_to_index_cs():
    """Eq. 8: real → its class, x_p and x_f → the fake class, whose index is C_s (the last output)."""
    m, w = _tiny_jgm()
    x, a, y, eps, z_p = _tiny_inputs()
    assert m.fake_class == N_SEEN
    with torch.no_grad():
        o = m._forward(x, a, eps, z_p)
    ref = _reference(w, x, a, y, eps, z_p, m.alpha, m.beta, N_SEEN)
    _close(m.categorizer_loss(x, y, [o["x_p"], o["x_f"]]), ref["c"])


# ------------------------------------------------------------------------------------------ the module
def _bound(tmp_path, cache_dir, split="dev", extra=()):
    return bound_method(["method=jgm", "method.pretrain_categorizer.epochs=1", *extra], tmp_path, cache_dir, split)[0]


def _batch(m):
    idx = m.batch_plan.sample(m.data.train_y, torch.Generator().manual_seed(0))[0]
    return m.data.train_x[idx][0], m.data.train_y[idx][0]


NETS = {"e": "encoder", "g": "generator", "d": "discriminator", "c": "categorizer"}


def test_one_training_step_steps_each_optimizer_once_on_its_own_network(tmp_path, cache_dir, monkeypatch):
    """A real ``training_step``: the four optimizers step once each, in the order of Eqs. 11-14; each
    step changes its own network only; each step's loss is Eq. 11 / 12 / 13 / 14 recomputed by hand from
    the weights of that moment (the D and C steps see x_p and x_f made by the updated E and G)."""
    m = _bound(tmp_path, cache_dir)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights larger than the N(0, 0.02) init, so that every term of every loss counts
        for net in NETS.values():
            for p in getattr(m, net).parameters():
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    m.alpha, m.beta = 0.4, 0.6  # at 0.01 / 0.1 the L_G and L_percept terms hide under float32 rounding
    nets = {n: getattr(m, n) for n in NETS.values()}
    initial = {n: snapshot(v) for n, v in nets.items()}
    steps, weights, losses = [], {}, {}
    for role, opt in zip(m.optimizer_roles, m.optimizers(), strict=True):
        inner = opt.optimizer

        def spy(*args, _role=role, _step=inner.step, **kw):
            before = weights[_role] = {n: snapshot(v) for n, v in nets.items()}
            out = _step(*args, **kw)
            steps.append((_role, {n for n, v in nets.items() if changed(before[n], v)}))
            return out

        monkeypatch.setattr(inner, "step", spy)
    real_manual_step = m.manual_step

    def record(role, fn):
        losses[role] = real_manual_step(role, fn)
        return losses[role]

    monkeypatch.setattr(m, "manual_step", record)
    idx = m.batch_plan.sample(m.data.train_y, torch.Generator().manual_seed(0))[0]
    batch = {"x": m.data.train_x[idx], "target": m.data.train_y[idx]}
    torch.manual_seed(123)
    m.training_step(batch, 0)

    assert steps == [(r, {NETS[r]}) for r in ("e", "g", "d", "c")]
    assert all(changed(initial[n], v) for n, v in nets.items())
    assert [sorted({int(s["step"]) for s in o.optimizer.state.values()}) for o in m.optimizers()] == [[1]] * 4
    # the losses: ε then z_p are the first two draws of the step
    torch.manual_seed(123)
    x, y = batch["x"][0], batch["target"][0]
    eps, z_p = torch.randn(len(x), m.noise_dim), torch.randn(len(x), m.noise_dim)
    a, yl = m.data.class_embeddings[y], m.local_labels(y)
    for role in ("e", "g", "d", "c"):
        ref = _reference(weights[role], x, a, yl, eps, z_p, m.alpha, m.beta, m.fake_class)
        assert float(losses[role]) == pytest.approx(float(ref[role]), rel=1e-4), role


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


@pytest.mark.parametrize("overrides,expected", [({}, 300), ({"batch_size": 50}, 50)])
def test_final_classifier_batch_is_not_set_by_syn_num(overrides, expected, monkeypatch):
    """JGM sizes its synthetic set by syn_multiplier, so eval.syn_num must not pick the classifier's batch:
    ``method.classifier_batch_size`` does, unless ``eval.classifier.batch_size`` is set."""
    from types import SimpleNamespace

    import zsl_lightning.methods.generative as base

    m, _ = _tiny_jgm(classifier_batch_size=300, syn_multiplier={"zsl": 2, "gzsl": 2},
                     evaluation={"syn_num": 7, "classifier": overrides})
    seen = []
    monkeypatch.setattr(base, "fit_softmax_classifier",
                        lambda x, y, n, **kw: seen.append(kw["batch_size"]) or torch.nn.Linear(FEAT, n))
    split = SimpleNamespace(label_mode="single", unseen_classes=torch.tensor([2, 3]), class_embeddings=torch.rand(4, ATT),
                            test_unseen_y=torch.tensor([2, 2, 3]))
    m.fit_scorer(split, "zsl", split.unseen_classes)
    assert seen == [expected]


def test_method_config_sets_the_classifier_batch(tmp_path, cache_dir):
    cfg = compose_cfg(["method=jgm", "eval.syn_num=7"], tmp_path, cache_dir)
    dm = build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    m = build_method(cfg)
    assert m.classifier_batch_size() == cfg.method.classifier_batch_size != cfg.eval.syn_num


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


# ------------------------------------------------------------------------------------------ Fig. 3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_sweep(root, ks=(1, 2, 4), n_unseen=600, data="synthetic"):
    """Job folders as a finished ``-m experiment=jgm_fig3`` leaves them (only what the plot reads)."""
    import json

    import yaml

    for i, k in enumerate(ks):
        job = root / str(i)
        job.mkdir(parents=True)
        (job / "config_resolved.yaml").write_text(yaml.safe_dump(
            {"method": {"syn_multiplier": {"zsl": k, "gzsl": k}}, "data_info": {"num_test_unseen": n_unseen}}))
        (job / "results.json").write_text(json.dumps(
            {"data": data, "headline": {"zsl_t1": 40.0 + i, "gzsl_u": 1.0, "gzsl_s": 2.0, "gzsl_H": 30.0 + i}}))
    return root


@pytest.mark.parametrize("logger,logged", LOGGER_CASES)
def test_fig3_callback_draws_the_sweep_and_logs_it_with_a_wandb_logger(logger, logged, tmp_path, monkeypatch):
    import sweep.plot_fig3 as fig3

    calls = []
    monkeypatch.setattr(fig3, "log_to_wandb", lambda png, **kw: calls.append((png, kw)))
    root = _fake_sweep(tmp_path / "multirun")
    fig3.Fig3Plot().on_multirun_end(sweep_config(root, logger))
    png = root / "fig3.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert calls == ([(png, {"project": "p", "group": "train-multirun"})] if logged else [])


def test_fig3_callback_without_finished_jobs_writes_nothing(tmp_path):
    from sweep.plot_fig3 import Fig3Plot

    (tmp_path / "multirun" / "0").mkdir(parents=True)  # a job that died before results.json
    Fig3Plot().on_multirun_end(sweep_config(tmp_path / "multirun", None))
    assert not (tmp_path / "multirun" / "fig3.png").exists()


def test_fig3_script_still_draws_a_sweep_dir_standalone(tmp_path):
    from sweep.plot_fig3 import main as plot_main

    root = _fake_sweep(tmp_path / "multirun")
    assert plot_main([str(root), "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC
    assert plot_main([str(tmp_path / "empty")]) == 1


def test_fig3_log_axis_tick_labels_do_not_overlap():
    """The paper's sweep (k = 1..16 on CUB and SUN) spans ~1.5 decades; matplotlib's default log formatter
    labels minor ticks there too (2x10^3, 3x10^3, 4x10^3, ...) and those labels overlap."""
    import matplotlib.pyplot as plt

    from sweep.plot_fig3 import draw

    h = {"zsl_t1": 50.0, "gzsl_H": 40.0}
    fig = draw({"CUB": [(2967 * k, h) for k in (1, 2, 4, 8, 16)], "SUN": [(1440 * k, h) for k in (1, 2, 4, 8, 16)]})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    try:
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            labels = [t for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
                      if t.get_text() and lo <= t.get_position()[0] <= hi]
            assert len(labels) >= 2
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    finally:
        plt.close(fig)


@pytest.mark.slow
def test_fig3_multirun_writes_the_plot_when_it_ends(tmp_path, cache_dir):
    """A real ``python train.py -m experiment=jgm_fig3`` (2 tiny jobs): the Hydra callback (PaperTables) draws
    paper_tables/jgm.fig3/figure.png."""
    import os
    import subprocess
    import sys

    root = ROOT
    sweep_dir = tmp_path / "multirun"
    tiny = [f"method.{n}.hidden=[16]" for n in ("encoder", "generator", "discriminator", "categorizer")]
    cmd = [sys.executable, "train.py", "-m", "experiment=jgm_fig3", "data=synthetic", "fig3_k=0.5,1",
           f"hydra.sweep.dir={sweep_dir}", f"paths.cache_dir={cache_dir}", "logger=none", "callbacks=none",
           "print_config=false", "trainer.enable_progress_bar=false", "method.epochs=1", "eval.select=last",
           "method.pretrain_categorizer.epochs=1", "eval.classifier.epochs=1",
           "+method.sampler.steps_per_epoch=5", *tiny]
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep_dir.glob("*/results.json"))) == 2
    png = sweep_dir / "paper_tables" / "jgm.fig3" / "figure.png"
    assert png.read_bytes()[:8] == PNG_MAGIC


# ------------------------------------------------------------------------------------------ Fig. 4
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
    note = json.loads(png.with_suffix(".json").read_text())
    assert note["epoch"] == 1 and note["weights"] == "epoch selected for zsl"  # eval.select=last: the last


def test_feature_embedding_plot_shows_the_selected_epoch_not_the_last(tmp_path, cache_dir):
    from types import SimpleNamespace

    from zsl_lightning.callbacks_plots import FeatureEmbeddingPlot

    m = _bound(tmp_path, cache_dir, "test")
    png = tmp_path / "plots" / "features_pca_test.png"

    def trainer(epoch):  # what the callback reads of a Trainer; current_epoch is 0-based during an epoch
        return SimpleNamespace(current_epoch=epoch, is_global_zero=True, default_root_dir=str(tmp_path), loggers=[])

    m.context.selected_epochs = {"zsl": 2, "gzsl": 3}
    cb = FeatureEmbeddingPlot(method="pca", max_classes=3, per_class=5)
    cb.on_train_epoch_end(trainer(0), m)
    assert not png.exists()
    cb.on_train_epoch_end(trainer(1), m)  # end of epoch 2, the one selected for ZSL
    drawn = png.stat().st_mtime_ns
    assert json.loads(png.with_suffix(".json").read_text())["epoch"] == 2
    cb.on_train_epoch_end(trainer(2), m)
    cb.on_train_end(trainer(3), m)
    assert png.stat().st_mtime_ns == drawn and json.loads(png.with_suffix(".json").read_text())["epoch"] == 2

    # no selected epoch trained in this process (e.g. resumed after it): the final weights, said so
    m.context.selected_epochs = {"zsl": 1}
    late = FeatureEmbeddingPlot(method="pca", max_classes=3, per_class=5)
    late.on_train_epoch_end(trainer(2), m)
    late.on_train_end(trainer(3), m)
    note = json.loads(png.with_suffix(".json").read_text())
    assert note["epoch"] == 3 and note["weights"].startswith("final weights")
