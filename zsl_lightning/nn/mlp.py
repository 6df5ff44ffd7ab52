"""Conditional MLPs: the generators, critics, encoders and classifiers of the MLP-based ZSL papers.

Every network of f-CLSWGAN, f-VAEGAN, Gao et al. and VS-Boost is an MLP over the concatenation of
its inputs (``[z; a]`` for a generator, ``[x; a]`` for a critic). They are instantiated from config
nodes (``method.generator``, ``method.discriminator``, ...), so a different architecture — e.g. one
derived by ZeroNAS — replaces them by naming another ``_target_`` with the same call signature:

* generator: ``forward(z, a) -> x``;
* critic / discriminator: ``forward(x, a) -> score`` (``a`` omitted for unconditional ones);
* ``forward_with_hidden(...) -> (output, last hidden activation)`` where a method needs features
  of the last hidden layer (Gao et al.'s perceptual loss, Eq. 9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def make_activation(name: str | None, negative_slope: float = 0.2) -> nn.Module:
    name = (name or "none").lower()
    if name == "relu":
        return nn.ReLU()
    if name in ("leaky_relu", "lrelu", "leakyrelu"):
        return nn.LeakyReLU(negative_slope)
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name in ("none", "identity", "linear"):
        return nn.Identity()
    raise ValueError(f"unknown activation '{name}' (relu | leaky_relu | sigmoid | tanh | none)")


def init_weights(module: nn.Module, scheme: str = "normal", std: float = 0.02) -> None:
    """``normal``: Linear weights N(0, std), biases 0 (the released f-CLSWGAN/tf-VAEGAN ``weights_init``);
    ``default``: PyTorch's default initialisation."""
    if scheme == "default":
        return
    if scheme != "normal":
        raise ValueError(f"unknown init scheme '{scheme}' (normal | default)")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MLP(nn.Module):
    """``[inputs concatenated] → (Linear → act → dropout) × len(hidden) → Linear → out_activation``.

    The networks it builds (``conf/method/*.yaml``), as in each paper or its released code:

    * f-CLSWGAN (Xian et al. 2018): generator ``G(z, a)``: ``[z; a] → 4096 LeakyReLU(0.2) → D ReLU``;
      critic ``D(x, a)``: ``[x; a] → 4096 LeakyReLU(0.2) → 1`` (the ``D`` of ``L_WGAN``, Eq. 2);
    * f-VAEGAN (Xian et al. 2019): generator ``[z; a] → 4096 LeakyReLU → D sigmoid``, the same critic, and
      the encoder ``q(z | x, a)`` through :class:`GaussianEncoder`;
    * Gao et al. 2018 (``method=jgm``): generator, discriminator and the ``C_s + 1``-way categorizer
      (1,000 / 1,024 hidden units), encoder through :class:`GaussianEncoder`;
    * VS-Boost (Li et al. 2023): f-CLSWGAN's generator and critic;
    * Gupta et al. 2021 (ML-f-CLSWGAN / ML-f-VAEGAN): the critic ``[x; e_µ] → 4096 → 1`` and the encoder;
      the ALF/FLF/CLF generators (``zsl_lightning.nn.fusion``) stack MLP layers.

    Initialisation (``init="normal"``): weights N(0, 0.02), biases 0 — the released ``weights_init``.

    Args:
        in_dims: size of each input (they are concatenated in call order), or one int.
        hidden: hidden widths, e.g. ``[4096]`` for the reference generator/critic.
        out_dim: output size.
        activation: hidden non-linearity (``leaky_relu`` with slope ``negative_slope`` by default).
        out_activation: ``relu`` (f-CLSWGAN generator), ``sigmoid`` (f-VAEGAN generator), ``none``, ...
    """

    def __init__(
        self,
        in_dims: int | Sequence[int],
        hidden: Sequence[int],
        out_dim: int,
        activation: str = "leaky_relu",
        out_activation: str | None = None,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        init: str = "normal",
        init_std: float = 0.02,
    ):
        super().__init__()
        self.in_dims = [int(in_dims)] if isinstance(in_dims, int) else [int(d) for d in in_dims]
        dims = [sum(self.in_dims), *[int(h) for h in hidden]]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), make_activation(activation, negative_slope)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dims[-1], int(out_dim))
        self.out_act = make_activation(out_activation, negative_slope)
        self.out_dim = int(out_dim)
        init_weights(self, init, init_std)

    def _cat(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != len(self.in_dims):
            raise ValueError(f"expected {len(self.in_dims)} inputs of sizes {self.in_dims}, got {len(inputs)}")
        return inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=-1)

    def forward_with_hidden(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(self._cat(inputs))
        return self.out_act(self.head(h)), h

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.head(self.body(self._cat(inputs))))


class GaussianEncoder(nn.Module):
    """Conditional VAE encoder ``q(z | x, a)``: an MLP whose last layer gives (μ, log σ²).

    f-VAEGAN / Gao et al. Eq. (1): ``z_f ~ p_E(z | x_s, a_s)``; sampled with the reparameterisation trick.
    """

    def __init__(self, in_dims: int | Sequence[int], hidden: Sequence[int], latent_dim: int,
                 activation: str = "leaky_relu", negative_slope: float = 0.2, init: str = "normal",
                 init_std: float = 0.02):
        super().__init__()
        self.net = MLP(in_dims, hidden, 2 * int(latent_dim), activation, None, negative_slope,
                       init=init, init_std=init_std)
        self.latent_dim = int(latent_dim)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(*inputs).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
