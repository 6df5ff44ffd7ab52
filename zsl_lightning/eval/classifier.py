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

from zsl_lightning.methods.divergence import refuse_non_finite
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


class TensorSource:
    """In-memory training rows as one chunk (the shape :func:`train_classifier` iterates)."""

    num_chunks = 1

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def chunks(self, order=None):
        yield self.x, self.y


#: classifier losses: ``ce`` softmax cross-entropy on class indices; ``bce`` BCE-with-logits on a float
#: target matrix; ``bce_known`` BCE-with-logits on a ±1/0 label matrix, unknown (0) entries weighted 0
LOSSES = ("ce", "bce", "bce_known")


def _loss(kind: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if kind == "ce":
        return F.cross_entropy(logits, y)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, y)
    known = (y != 0).float()
    return F.binary_cross_entropy_with_logits(logits, (y > 0).float(), weight=known)


def train_classifier(model: nn.Module, source, *, loss: str = "ce", epochs: int, lr: float,
                     betas: tuple[float, float] = (0.5, 0.999), batch_size: int, weight_decay: float = 0.0,
                     generator: torch.Generator | None = None, select_fn: Callable[[nn.Module], float] | None = None,
                     device: torch.device | None = None) -> nn.Module:
    """The one classifier-training loop of the framework: Adam on ``model``, ``epochs`` passes over ``source``.

    Used for the final classifier (:func:`fit_softmax_classifier`), f-CLSWGAN's and ML-f-CLSWGAN's frozen seen
    classifiers and Gao et al.'s categorizer pre-training. ``source`` has ``num_chunks`` and ``chunks(order)``
    yielding ``(x, y)`` blocks (:class:`TensorSource`, or a streamed split's training rows): every epoch visits
    the chunks in a random order, and each chunk's rows in a random permutation, cut into batches of
    ``batch_size`` (one chunk = one permutation of all rows per epoch, as the released scripts do). With
    ``select_fn`` the model after each epoch is scored and the best state is kept (test-set selection only).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown classifier loss '{loss}' ({' | '.join(LOSSES)})")
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    best, best_state = -float("inf"), None
    with torch.enable_grad():
        for _ in range(int(epochs)):
            order = torch.randperm(source.num_chunks, generator=generator).numpy()
            for x, y in source.chunks(order):
                if device is not None:
                    x, y = x.to(device), y.to(device)
                x = x.detach().flatten(1)
                perm = torch.randperm(len(x), generator=generator).to(x.device)
                for i in range(0, len(x), batch_size):
                    idx = perm[i : i + batch_size]
                    value = _loss(loss, model(x[idx]), y[idx])
                    opt.zero_grad(set_to_none=True)
                    value.backward()
                    opt.step()
            if select_fn is not None:
                score = select_fn(model)
                if score > best:
                    best = score
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return model


def fit_softmax_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, multilabel: bool = False,
                           **kw) -> nn.Linear:
    """Fit ``Linear(D, num_classes)`` on in-memory ``(x, y)`` (:func:`fit_linear_classifier`).

    Single-label: the softmax classifier of f-CLSWGAN (Xian et al. 2018, Sec. 3.2),
    ``min_θ −1/|T| Σ_{(x,y)∈T} log P(y | x; θ)`` with ``P(y | x; θ) = exp(θ_yᵀx) / Σ_i exp(θ_iᵀx)``
    (cross-entropy, ``y`` in ``0..num_classes-1``); it is also f-CLSWGAN's pre-trained classifier
    ``P(y | x̃; θ)`` of L_CLS. ``multilabel``: binary cross-entropy with logits on a float target matrix
    ``y`` (N × num_classes) — the multi-label classifier of Gupta et al. (BCE-with-logits, Adam 1e-3,
    50 epochs, batch 300).
    """
    kw.setdefault("loss", "bce" if multilabel else "ce")
    refuse_non_finite(x, "the final classifier's training features")
    return fit_linear_classifier(TensorSource(x.detach().flatten(1), y.detach()), x[0].numel(), num_classes,
                                 x.device, **kw)


def fit_linear_classifier(source, feature_dim: int, num_classes: int, device, *, loss: str = "ce",
                          epochs: int = 25, lr: float = 1e-3, betas: tuple[float, float] = (0.5, 0.999),
                          batch_size: int = 100, weight_decay: float = 0.0, generator: torch.Generator | None = None,
                          select_fn: Callable[[nn.Linear], float] | None = None, init: str = "normal",
                          init_std: float = 0.02) -> nn.Linear:
    """A fresh ``Linear(feature_dim, num_classes)`` trained by :func:`train_classifier` on ``source``.

    ``loss="bce_known"`` trains on a ±1/0 label matrix with unknown labels ignored: the seen classifier f_cls
    of Gupta et al. Eq. (7). ``init``: ``normal`` — weights N(0, ``init_std``), bias 0, as the released code's
    ``weights_init`` (tf-VAEGAN ``classifier.py``, f-CLSWGAN ``classifier2``); ``default`` — PyTorch's default
    (Kaiming-uniform). With ``select_fn`` the layer after each epoch is scored and the best one is returned;
    otherwise the last one.
    """
    linear = nn.Linear(int(feature_dim), int(num_classes))
    init_weights(linear, init, init_std)
    linear = linear.to(device)
    return train_classifier(linear, source, loss=loss, epochs=epochs, lr=lr, betas=betas, batch_size=batch_size,
                            weight_decay=weight_decay, generator=generator, select_fn=select_fn, device=device)
