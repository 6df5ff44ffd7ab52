"""Multi-label feature generators of Gupta et al. 2021 (*Generative Multi-Label Zero-Shot Learning*).

Every generator is called ``G(z, y, emb)``: noise ``z`` (B × d_z), a multi-hot label matrix ``y``
(B × L, 1 = positive) over the rows of the label-embedding table ``emb`` (L × d). They are config
nodes (``method.generator``), so ALF / FLF / CLF — or any module with this signature — drop into both
ML-f-CLSWGAN and ML-f-VAEGAN.
"""

from __future__ import annotations

import torch
from torch import nn

from zsl_lightning.nn.mlp import MLP, init_weights, make_activation


def mean_label_embedding(y: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Eq. (1): ``e_µ = 1/n Σ_{j: y[j]=1} e(y_j)`` (an image without positives gets the zero vector)."""
    return (y @ emb) / y.sum(1, keepdim=True).clamp(min=1.0)


class ALF(nn.Module):
    """Attribute-level fusion, Eq. (1): ``x̃_a = G_a(z, e_µ)`` — one generator on the mean label embedding.

    ``G_a``: ``[z; e_µ] → hidden (LeakyReLU) → D`` then ``out_activation`` (sigmoid: MinMax-scaled features).
    """

    def __init__(self, noise_dim: int, embedding_dim: int, feature_dim: int, hidden=(4096,),
                 out_activation: str = "sigmoid", init: str = "normal"):
        super().__init__()
        self.net = MLP([noise_dim, embedding_dim], list(hidden), feature_dim, out_activation=out_activation, init=init)

    def forward(self, z: torch.Tensor, y: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.net(z, mean_label_embedding(y, emb))


class FLF(nn.Module):
    """Feature-level fusion, Eq. (2): ``x̃_j = G_f(z, e(y_j))`` for every positive label j (same z),
    ``x̃_f = 1/n Σ_j x̃_j``. Vectorised: G_f runs once on all (image, positive label) pairs and the
    outputs are averaged back per image with ``index_add_``.
    """

    def __init__(self, noise_dim: int, embedding_dim: int, feature_dim: int, hidden=(4096,),
                 out_activation: str = "sigmoid", init: str = "normal"):
        super().__init__()
        self.net = MLP([noise_dim, embedding_dim], list(hidden), feature_dim, out_activation=out_activation, init=init)
        self.feature_dim = int(feature_dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        rows, cols = (y > 0).nonzero(as_tuple=True)
        empty = (y > 0).sum(1) == 0
        if empty.any():  # no positive label: fall back to the zero embedding (never happens in training)
            extra = empty.nonzero(as_tuple=True)[0]
            rows = torch.cat([rows, extra])
            e = torch.cat([emb[cols], emb.new_zeros(len(extra), emb.shape[1])])
        else:
            e = emb[cols]
        out = self.net(z[rows], e)
        total = out.new_zeros(len(y), out.shape[1]).index_add_(0, rows, out)
        count = torch.bincount(rows, minlength=len(y)).clamp(min=1).to(out.dtype).unsqueeze(1)
        return total / count


class CLF(nn.Module):
    """Cross-level feature fusion, Eqs. (3)–(5).

    ``x̃ = [x̃_f; x̃_a]`` (2 tokens of size d) → H-head self-attention (Eq. 3: per-head
    ``r_h = softmax(q_h k_hᵀ / √d')``, ``α_h = r_h v_h``, concatenated and projected by ``W_O``) →
    ``õ = f(x̃ + o) + (x̃ + o)`` with ``f`` a two-layer FC sub-network (Eq. 4) → ``x̃_c`` = mean of the two
    tokens (Eq. 5) → ``out_activation``.

    Sizes from the paper: d = the feature dim (4,096 for VGG19 fc7), H = 8, f hidden = 8,192; G_a and G_f
    are ALF / FLF generators with 4,096 hidden units. Released-code details kept as options: its branches
    end in a sigmoid before fusion (``branch_activation``), its projections have no bias
    (``attention_bias``), f uses LeakyReLU(0.2), dropout 0.1 on the attention weights and output.
    """

    def __init__(self, noise_dim: int, embedding_dim: int, feature_dim: int, hidden=(4096,), heads: int = 8,
                 ffn_hidden: int = 8192, dropout: float = 0.1, branch_activation: str = "sigmoid",
                 out_activation: str = "sigmoid", attention_bias: bool = False, init: str = "normal"):
        super().__init__()
        if feature_dim % heads:
            raise ValueError(f"CLF: feature_dim {feature_dim} must be divisible by heads {heads}")
        self.alf = ALF(noise_dim, embedding_dim, feature_dim, hidden, branch_activation, init)
        self.flf = FLF(noise_dim, embedding_dim, feature_dim, hidden, branch_activation, init)
        self.attn = nn.MultiheadAttention(feature_dim, heads, dropout=dropout, bias=attention_bias, batch_first=True)
        self.attn_dropout = nn.Dropout(dropout)
        self.ffn = nn.Sequential(nn.Linear(feature_dim, ffn_hidden), nn.LeakyReLU(0.2), nn.Linear(ffn_hidden, feature_dim))
        init_weights(self.ffn, init)
        self.out_act = make_activation(out_activation)

    def forward(self, z: torch.Tensor, y: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        tokens = torch.stack([self.flf(z, y, emb), self.alf(z, y, emb)], dim=1)  # (B, 2, d)
        o, _ = self.attn(tokens, tokens, tokens, need_weights=False)  # Eq. (3)
        h = tokens + self.attn_dropout(o)
        h = self.ffn(h) + h  # Eq. (4)
        return self.out_act(h.mean(dim=1))  # Eq. (5)
