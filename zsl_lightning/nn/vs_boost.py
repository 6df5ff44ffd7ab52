"""The two small networks of VS-Boost's metric-learning module (Li et al., IJCAI 2023, Sec. 3.2-3.5).

The generator G, critic D and semantic regressor R are plain :class:`~zsl_lightning.nn.mlp.MLP` s
(one 4,096-unit LeakyReLU hidden layer each); these are the encoder E and the learnable similarity F.
"""

from __future__ import annotations

import torch
from torch import nn

from zsl_lightning.nn.mlp import init_weights


class FeatureEncoder(nn.Module):
    """The feature encoder E of Sec. 3.2 / 4: ``h = E(x) = LeakyReLU(W x + b)``, one linear layer
    (2,048 → 2,048 on ResNet-101 features) with a LeakyReLU.

    Args:
        in_dim: feature size of the data (``data_info.feature_dim``).
        out_dim: size of the refined feature ``h``; ``None`` = ``in_dim`` as in the paper.
        negative_slope: LeakyReLU slope (the paper does not give it; 0.2 as every other network here).
        init: ``normal`` (N(0, 0.02), the f-CLSWGAN code's initialisation) or ``default`` (PyTorch's).
    """

    def __init__(self, in_dim: int, out_dim: int | None = None, negative_slope: float = 0.2,
                 init: str = "normal", init_std: float = 0.02):
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim) if out_dim else self.in_dim
        self.linear = nn.Linear(self.in_dim, self.out_dim)
        self.act = nn.LeakyReLU(negative_slope)
        init_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


class RelationNet(nn.Module):
    """The learnable similarity of Eq. (4): ``F(h_i, h_j) = σ(w^F (h_i ∘ h_j))``, ``w^F`` a [dim, 1]
    fully connected layer over the element-wise product.

    ``forward`` returns the logit ``w^F (h_i ∘ h_j)`` (the loss applies σ in its numerically stable
    form); :meth:`probability` returns ``F`` itself. ``bias`` adds the layer's bias (a "fully
    connected layer" has one; the equation omits it).
    """

    def __init__(self, dim: int, bias: bool = True, init: str = "default", init_std: float = 0.02):
        super().__init__()
        self.fc = nn.Linear(int(dim), 1, bias=bias)
        init_weights(self, init, init_std)

    def forward(self, h_i: torch.Tensor, h_j: torch.Tensor) -> torch.Tensor:
        return self.fc(h_i * h_j).squeeze(-1)

    def probability(self, h_i: torch.Tensor, h_j: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(h_i, h_j))
