"""Issue 17: the scale of JGM's L_recon (``method.recon_reduction``) and each term's share of G's gradient
(``zsl_lightning/methods/jgm_shares.py``, ``scripts/jgm_grad_shares.py``, docs/methods/jgm.md)."""

import json

import pytest
import torch

from tests.helpers import CONF, ROOT, compose_cfg, shrink
from zsl_lightning.pipeline import run


def _share_jgm(reduction: str, recon_loss: str = "bce"):
    """A small JGM (64-d features, 8-d attributes, 32 hidden units, 5 seen classes) at a fixed seed and one
    fixed batch of 32 clustered features in [0, 1]; returns the method and Eq. 12's inputs."""
    from functools import partial

    from zsl_lightning.methods.jgm import JGM
    from zsl_lightning.nn.mlp import MLP, GaussianEncoder

    feat, att, lat, hid, n_cls, batch = 64, 8, 8, 32, 5, 32
    torch.manual_seed(0)
    adam = partial(torch.optim.Adam, lr=1e-3)
    m = JGM(encoder=GaussianEncoder([feat, att], [hid], lat),
            generator=MLP([lat, att], [hid], feat, activation="leaky_relu", out_activation="sigmoid"),
            discriminator=MLP([feat], [hid], 1, activation="leaky_relu"),
            categorizer=partial(MLP, in_dims=[feat], hidden=[hid], activation="leaky_relu"),
            optimizer_e=adam, optimizer_g=adam, optimizer_d=adam, optimizer_c=adam, noise_dim=lat,
            recon_reduction=reduction, recon_loss=recon_loss)
    m.categorizer = m._make_categorizer(out_dim=n_cls + 1)
    g = torch.Generator().manual_seed(1)
    y = torch.arange(batch) % n_cls
    x = (torch.rand(n_cls, feat, generator=g)[y] + 0.1 * torch.randn(batch, feat, generator=g)).clamp(0, 1)
    a = torch.rand(n_cls, att, generator=g)[y]
    return m, (x, a, y, torch.randn(batch, lat, generator=g), torch.randn(batch, lat, generator=g))


def test_recon_reduction_mean_divides_l_recon_and_its_gradient_by_the_feature_dimension():
    from zsl_lightning.methods.jgm_shares import gradient_norms

    (m_sum, args), (m_mean, _) = _share_jgm("sum"), _share_jgm("mean")
    t_sum, t_mean = m_sum.generator_terms(*args), m_mean.generator_terms(*args)
    assert t_mean["recon"].item() == pytest.approx(t_sum["recon"].item() / 64, rel=1e-6)
    assert t_mean["gan"].item() == pytest.approx(t_sum["gan"].item(), rel=1e-6)  # the other terms keep their scale
    n_sum = gradient_norms(t_sum, m_sum.generator.parameters())
    n_mean = gradient_norms(t_mean, m_mean.generator.parameters())
    assert n_mean["recon"] == pytest.approx(n_sum["recon"] / 64, rel=1e-5)
    assert n_mean["gan"] == pytest.approx(n_sum["gan"], rel=1e-5)
    # Eq. 11 uses the same L_recon: E's reconstruction term shrinks by D as well, L_KL does not
    e_sum, e_mean = m_sum.encoder_terms(*args[:2], *args[3:]), m_mean.encoder_terms(*args[:2], *args[3:])
    assert e_mean["recon"].item() == pytest.approx(e_sum["recon"].item() / 64, rel=1e-6)
    assert e_mean["kl"].item() == pytest.approx(e_sum["kl"].item(), rel=1e-6)


def test_recon_reduction_is_checked():
    with pytest.raises(Exception, match="recon_reduction"):
        _share_jgm("median")


def test_generator_loss_is_the_sum_of_its_named_terms():
    m, args = _share_jgm("sum")
    loss, parts = m.generator_loss(*args)
    terms = m.generator_terms(*args)
    assert set(terms) == {"gan", "recon", "percept"}
    assert loss.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
    assert parts["loss_gan_g"].item() == pytest.approx(terms["gan"].item() / m.alpha, rel=1e-6)


# Each term's share of G's gradient norm (Eq. 12) at the start of training, at the shapes and seed above, for
# the default reduction (conf/method/jgm.yaml) and the other one. docs/methods/jgm.md has the shares measured in
# real runs (scripts/jgm_grad_shares.py). A change to a loss that moves a share out of its range fails here.
SHARE_RANGES = {
    "sum": {"recon": (0.99, 1.0), "gan": (1e-5, 2e-4), "percept": (3e-4, 5e-3)},
    "mean": {"recon": (0.85, 0.98), "gan": (5e-4, 1e-2), "percept": (0.02, 0.15)},
}


@pytest.mark.parametrize("reduction", sorted(SHARE_RANGES))
def test_generator_gradient_shares_stay_in_their_pinned_ranges(reduction):
    from zsl_lightning.methods.jgm_shares import gradient_shares

    m, args = _share_jgm(reduction)
    shares = gradient_shares(m.generator_terms(*args), m.generator.parameters())
    assert sum(shares.values()) == pytest.approx(1.0)
    for term, (lo, hi) in SHARE_RANGES[reduction].items():
        assert lo <= shares[term] <= hi, (reduction, term, shares)


def test_default_recon_reduction_is_the_documented_one():
    from omegaconf import OmegaConf

    default = OmegaConf.load(CONF / "method" / "jgm.yaml").recon_reduction
    assert default in SHARE_RANGES
    assert f"`recon_reduction: {default}`" in (ROOT / "docs" / "methods" / "jgm.md").read_text()


def test_grad_share_probe_measures_g_and_e_in_a_real_run(tmp_path, cache_dir):
    """``GradShareProbe`` (what scripts/jgm_grad_shares.py uses) inside a real run: epochs 0 and 1 of the dev
    phase, shares of G's three terms and E's three terms, each set adding up to 1."""
    path = tmp_path / "shares.json"
    cfg = shrink(compose_cfg(["method=jgm", "method.epochs=2", "eval.dev_only=true", "eval.every=1000",
                              "method.pretrain_categorizer.epochs=1",
                              "+callbacks.probe._target_=zsl_lightning.methods.jgm_shares.GradShareProbe",
                              "+callbacks.probe.epochs=[0,1]", f"+callbacks.probe.path={path}"],
                             tmp_path / "out", cache_dir))
    run(cfg)
    found = json.loads(path.read_text())
    assert set(found) == {"0", "1"}
    for shares in found.values():
        assert set(shares["G"]) == {"gan", "recon", "percept"} and set(shares["E"]) == {"kl", "recon", "percept"}
        assert sum(shares["G"].values()) == pytest.approx(1.0) and sum(shares["E"].values()) == pytest.approx(1.0)
