"""The final-classifier stage of generative ZSL: a softmax classifier fit on (synthetic) features.

Reference recipe (f-CLSWGAN / f-VAEGAN ``classifier2``): one linear layer + log-softmax, NLL loss,
weights N(0, 0.02) and biases 0 (the released ``weights_init``), Adam(lr 1e-3, betas (0.5, 0.999)),
25 epochs, batch size = ``syn_num``. Here the features stay on the device and batches are cut from one
permutation per epoch by index (no DataLoader).

The released code evaluates on the *test* set after every classifier epoch and keeps the best; here the
classifier of the last epoch is used unless a ``select_fn`` is passed (the ``eval.select=test_best``
reproduction of the papers' protocol).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.nn.mlp import init_weights


class LinearScorer(nn.Module):
    """Scores over ``classes`` (global ids, in column order) of a linear layer, applied after an optional
    feature transform (e.g. VS-Boost's encoder): softmax probabilities (single-label) or raw logits
    (``activation="none"``: multi-label, where each label is ranked on its own)."""

    def __init__(self, linear: nn.Linear, classes: torch.Tensor, transform: Callable | None = None,
                 activation: str = "softmax"):
        super().__init__()
        self.linear = linear
        self.register_buffer("classes", classes.clone())
        self.transform = transform
        self.activation = activation

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform is not None:
            x = self.transform(x)
        logits = self.linear(x.flatten(1))
        return F.softmax(logits, dim=1) if self.activation == "softmax" else logits


def fit_softmax_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 25,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    batch_size: int = 100,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
    select_fn: Callable[[nn.Linear], float] | None = None,
    multilabel: bool = False,
    init: str = "normal",
    init_std: float = 0.02,
) -> nn.Linear:
    """Fit ``Linear(D, num_classes)`` on ``(x, y)``.

    Single-label: the softmax classifier of f-CLSWGAN (Xian et al. 2018, Sec. 3.2),
    ``min_θ −1/|T| Σ_{(x,y)∈T} log P(y | x; θ)`` with ``P(y | x; θ) = exp(θ_yᵀx) / Σ_i exp(θ_iᵀx)``
    (cross-entropy, ``y`` in ``0..num_classes-1``); it is also f-CLSWGAN's pre-trained classifier
    ``P(y | x̃; θ)`` of L_CLS. ``multilabel``: binary cross-entropy with logits on a float target matrix
    ``y`` (N × num_classes) — the multi-label classifier of Gupta et al. (BCE-with-logits, Adam 1e-3,
    50 epochs, batch 300).

    ``init``: ``normal`` — weights N(0, ``init_std``), bias 0, as the released code's ``weights_init``
    (tf-VAEGAN ``classifier.py``, f-CLSWGAN ``classifier2``); ``default`` — PyTorch's default
    (Kaiming-uniform). With ``select_fn`` the layer after each epoch is scored and the best one is
    returned; otherwise the last one.
    """
    x = x.detach().flatten(1)
    y = y.detach()
    n, d = x.shape
    linear = nn.Linear(d, num_classes)
    init_weights(linear, init, init_std)
    linear = linear.to(x.device)
    opt = torch.optim.Adam(linear.parameters(), lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    best, best_state = -float("inf"), None
    with torch.enable_grad():
        for _ in range(int(epochs)):
            perm = torch.randperm(n, generator=generator).to(x.device)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                logits = linear(x[idx])
                if multilabel:
                    loss = F.binary_cross_entropy_with_logits(logits, y[idx])
                else:
                    loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if select_fn is not None:
                score = select_fn(linear)
                if score > best:
                    best = score
                    best_state = {k: v.clone() for k, v in linear.state_dict().items()}
    if best_state is not None:
        linear.load_state_dict(best_state)
    return linear
