"""A closed-form multi-label ZSL baseline (``method=ridge_ml``): ridge-regress an image's features onto the
mean embedding of its positive labels, then rank labels by the cosine between the regressed embedding and
each label's embedding (the "trivial baseline" of the multi-label issue; Fast0Tag-like, but linear).

``W = (X̃ᵀX̃ + λI)⁻¹ X̃ᵀ T`` with X̃ = [x, 1] and T the rows' mean label embeddings (Gupta et al. Eq. 1's e_µ);
score(x, c) = cos(x̃W, e_c). XᵀX is accumulated chunk by chunk, so the training file is streamed.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from zsl_lightning.methods.base import ZSLMethod
from zsl_lightning.nn.fusion import mean_label_embedding

warnings.filterwarnings("ignore", message=r".*configure_optimizers.* returned `None`.*")


class RidgeScorer:
    def __init__(self, W: torch.Tensor, emb: torch.Tensor, classes: torch.Tensor):
        self.W, self.classes = W, classes
        self.targets = F.normalize(emb[classes], dim=1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        pred = torch.cat([x, torch.ones(len(x), 1, device=x.device, dtype=x.dtype)], 1) @ self.W
        return F.normalize(pred, dim=1) @ self.targets.T


class RidgeML(ZSLMethod):
    """Ridge regression to e_µ + cosine ranking; no optimizer (solved when fitting starts)."""

    label_modes = ("multi",)

    def __init__(self, feature_dim: int, embedding_dim: int, ridge: float = 1.0, **base):
        super().__init__(**base)
        self.ridge = float(ridge)
        self.register_buffer("W", torch.zeros(int(feature_dim) + 1, int(embedding_dim)))

    def configure_optimizers(self):
        return None

    def prepare(self, split) -> None:
        d = self.W.shape[0]
        xtx = torch.zeros(d, d, dtype=torch.float64, device=self.device)
        xtt = torch.zeros(d, self.W.shape[1], dtype=torch.float64, device=self.device)
        emb = split.class_embeddings[split.train_cols]
        for x, y in split.train_chunks():
            x = x.to(self.device).flatten(1).double()
            x = torch.cat([x, torch.ones(len(x), 1, device=x.device, dtype=x.dtype)], 1)
            t = mean_label_embedding((y.to(self.device) > 0).double(), emb.double())
            xtx += x.T @ x
            xtt += x.T @ t
        eye = torch.eye(d, dtype=xtx.dtype, device=xtx.device)
        self.W.copy_(torch.linalg.solve(xtx + self.ridge * eye, xtt).float())

    def training_step(self, batch, batch_idx):
        return None

    def fit_scorer(self, split, task, classes, select_fn=None):
        return RidgeScorer(self.W, split.class_embeddings, classes.to(self.W.device))
