"""ESZSL (Romera-Paredes & Torr, ICML 2015): closed-form bilinear compatibility, a sanity baseline.

``V = (X Xᵀ + γ I)⁻¹ X Y Sᵀ (S Sᵀ + λ I)⁻¹`` (the closed form of ESZSL's objective, Sec. 3.2), with X the d×m
training features, Y ∈ {−1, 1}^{m×z} the one-vs-rest labels and S the a×z seen-class embeddings;
a test image x scores class c as ``xᵀ V s_c``.

``γ = 10^gamma_exp`` and ``λ = 10^lambda_exp``. With ``grid`` set (default), both exponents are chosen
on a class-disjoint hold-out of the *training* classes (``holdout_fraction`` of them, seeded), then V
is refitted on all training data — no test data is ever looked at.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from zsl_lightning.eval.metrics import per_class_accuracy
from zsl_lightning.methods.base import ZSLMethod

# ESZSL has nothing to optimise; Lightning's "fit will run with no optimizer" warning is expected.
warnings.filterwarnings("ignore", message=r".*configure_optimizers.* returned `None`.*")


def eszsl_solve(x: torch.Tensor, y: torch.Tensor, classes: torch.Tensor, emb: torch.Tensor,
                gamma: float, lam: float) -> torch.Tensor:
    """Closed-form ESZSL (Romera-Paredes & Torr 2015, Sec. 3.2): returns V (d × a).

    With the squared loss and the regulariser ``Ω(V) = γ‖VS‖²_F + λ‖XᵀV‖²_F + β‖V‖²_F`` with β = γλ, the
    minimiser of ``‖XᵀVS − Y‖²_F + Ω(V)`` is ``V = (XXᵀ + γI)⁻¹ X Y Sᵀ (SSᵀ + λI)⁻¹`` (X: d × m features,
    Y ∈ {−1, 1}^{m×z}, S: a × z seen-class embeddings). Solved in float64. ``y`` holds global ids of
    ``classes``.
    """
    x64, s = x.double(), emb[classes].double().T  # d... : x64 m×d, s a×z
    Y = -torch.ones(len(y), len(classes), dtype=torch.float64, device=x.device)
    Y[torch.arange(len(y)), torch.searchsorted(classes, y)] = 1.0
    d, a = x64.shape[1], s.shape[0]
    left = torch.linalg.solve(x64.T @ x64 + gamma * torch.eye(d, dtype=x64.dtype, device=x.device), x64.T @ Y @ s.T)
    return (left @ torch.linalg.inv(s @ s.T + lam * torch.eye(a, dtype=x64.dtype, device=x.device))).float()


class ESZSLScorer:
    def __init__(self, V: torch.Tensor, emb: torch.Tensor, classes: torch.Tensor):
        self.W = V @ emb[classes].T
        self.classes = classes

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W


class ESZSL(ZSLMethod):
    """ESZSL; no optimizer: V is solved in closed form when fitting starts."""

    def __init__(self, feature_dim: int, embedding_dim: int, gamma_exp: float = 0.0, lambda_exp: float = 0.0,
                 grid: Sequence[float] | None = (-3, -2, -1, 0, 1, 2, 3), holdout_fraction: float = 0.2,
                 **base):
        super().__init__(**base)
        self.gamma_exp, self.lambda_exp = float(gamma_exp), float(lambda_exp)
        self.grid = list(grid) if grid else None
        self.holdout_fraction = float(holdout_fraction)
        self.register_buffer("V", torch.zeros(int(feature_dim), int(embedding_dim)))
        self.selected: dict[str, float] = {}

    def configure_optimizers(self):
        return None

    def prepare(self, split) -> None:
        if self.grid:
            self.gamma_exp, self.lambda_exp = self._select(split)
        self.selected = {"gamma_exp": self.gamma_exp, "lambda_exp": self.lambda_exp}
        self.V.copy_(eszsl_solve(split.train_x, split.train_y, split.seen_classes, split.class_embeddings,
                                 10.0 ** self.gamma_exp, 10.0 ** self.lambda_exp))

    def _select(self, split) -> tuple[float, float]:
        classes = split.seen_classes.cpu().numpy()
        rng = np.random.default_rng(self.seed + 17)
        n_hold = max(2, int(round(self.holdout_fraction * len(classes))))
        held = torch.as_tensor(np.sort(rng.choice(classes, n_hold, replace=False)), device=split.train_y.device)
        is_held = torch.isin(split.train_y, held)
        fit_classes = split.seen_classes[~torch.isin(split.seen_classes, held)]
        xf, yf = split.train_x[~is_held], split.train_y[~is_held]
        xh, yh = split.train_x[is_held], split.train_y[is_held]
        best = (-1.0, 0.0, 0.0)
        for g in self.grid:
            for lam in self.grid:
                V = eszsl_solve(xf, yf, fit_classes, split.class_embeddings, 10.0 ** g, 10.0 ** lam)
                sc = ESZSLScorer(V, split.class_embeddings, held)
                acc = per_class_accuracy(held[sc(xh).argmax(1)], yh, held)
                if acc > best[0]:
                    best = (acc, float(g), float(lam))
        return best[1], best[2]

    def training_step(self, batch, batch_idx):
        return None  # nothing to optimise: V is closed-form

    def fit_scorer(self, split, task, classes, select_fn=None):
        return ESZSLScorer(self.V, split.class_embeddings, classes)

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self.selected:
            self.log_dict({f"{self.context.train_prefix}/{k}": v for k, v in self.selected.items()}, on_epoch=True)
