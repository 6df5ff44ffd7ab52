"""The multi-label f-VAEGAN encoder: our default and the released model.py's shape (issue 17, item 2)."""

from torch import nn

from zsl_lightning.nn.mlp import GaussianEncoder


def _linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_default_encoder_is_two_fc_layers_split_into_mu_and_logvar():
    enc = GaussianEncoder([4096, 300], hidden=[4096], latent_dim=300, init="default")
    assert _linear_shapes(enc) == [(4396, 4096), (4096, 600)]


def test_released_encoder_shape_is_one_override():
    """Released: [x; e] 4,396 → 4,096 → 600 (LeakyReLU) → two 300-d heads = one 600 → 600 layer split in halves."""
    enc = GaussianEncoder([4096, 300], hidden=[4096, 600], latent_dim=300, init="default")
    assert _linear_shapes(enc) == [(4396, 4096), (4096, 600), (600, 600)]
    acts = [m for m in enc.net.body if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 2  # a LeakyReLU after 4,096 and after 600, as in the released code
