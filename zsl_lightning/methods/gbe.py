"""GBE-MLZSL (Liu et al. 2023, "A Group Bi-Enhancement Framework for Multi-Label Zero-Shot Learning") as a
method (``method=gbe``): the network of :mod:`zsl_lightning.nn.gbe` trained with the loss of
:mod:`zsl_lightning.losses.gbe` on feature maps (``data=synthetic_maps | nuswide_maps | openimages_maps``).

* Input: the packed multi-scale maps of :mod:`zsl_lightning.data.maps_store` (``data_info.input = maps``),
  or uint8 images (``input = images``) run through :class:`~zsl_lightning.nn.backbone.VGG19MultiScale`
  (frozen, or fine-tuned end to end with ``data.backbone.trainable=true``: its parameters then join the
  model's optimizer role). With a single-scale source (BiAM / LESA 14 x 14) ML-FEF is switched off.
* Training step: ``S = GBE(maps)`` (B, n, d_w); Eq. (17) ``gbe_loss(S, word vectors of the training
  columns, target)``; one optimizer role ``model`` (Adam lr 1e-4, weight decay 4e-3 in the paper, ×0.1 at
  epochs 7 and 14 through ``method.scheduler``).
* Scoring (Eq. 13): a label's score is ``max_m ⟨S_m, w_l⟩`` over the requested labels; no classifier is
  fitted, so ZSL and GZSL differ only in the label set scored.
* ``score_norm`` (not in the paper; default ``none``): ``centre`` subtracts from each image's scores their
  mean over ALL labels of the split (seen and unseen), ``standardise`` also divides by their standard
  deviation. An image's ranking of labels (P/R/F1@K) is unchanged; a label's ranking of images (AP) loses
  the image-dependent offset ``max``-scores share (docs/methods/gbe.md, "Choices the paper leaves open").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses.gbe import gbe_loss
from zsl_lightning.methods.base import ZSLMethod
from zsl_lightning.nn.gbe import GBE, group_max_scores

INPUTS = ("maps", "images")
SCORE_NORMS = ("none", "centre", "standardise")


def normalise_scores(scores: torch.Tensor, reference: torch.Tensor, how: str = "none") -> torch.Tensor:
    """Per-image score normalisation (an option; Eq. 13 alone is ``how="none"``): ``scores`` ``(B, L)`` minus
    the row mean of ``reference`` ``(B, L')`` (``"centre"``), then divided by its row standard deviation
    (``"standardise"``, floored at 1e-6). A positive affine map per row: each image's label order is kept."""
    if how == "none":
        return scores
    out = scores - reference.mean(dim=1, keepdim=True)
    if how == "standardise":
        out = out / reference.std(dim=1, keepdim=True).clamp(min=1e-6)
    return out


class GBEScorer:
    """Eq. (13) of Liu et al. 2023 over ``classes``: ``score(x, l) = max_m ⟨S_m(x), w_l⟩``, in sub-batches of
    ``batch_size`` images (a streamed evaluation chunk holds ``data.chunk_rows`` of them). With
    ``score_norm != "none"`` the scores are normalised per image by their statistics over ``all_vectors``
    (every label of the split), see :func:`normalise_scores`."""

    def __init__(self, method: GBEMethod, word_vectors: torch.Tensor, classes: torch.Tensor, batch_size: int,
                 score_norm: str = "none", all_vectors: torch.Tensor | None = None):
        self.method, self.word_vectors, self.classes = method, word_vectors, classes
        self.batch_size, self.score_norm = int(batch_size), score_norm
        self.all_vectors = word_vectors if all_vectors is None else all_vectors

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        S = self.method(x)
        scores = group_max_scores(S, self.word_vectors)
        if self.score_norm == "none":
            return scores
        return normalise_scores(scores, group_max_scores(S, self.all_vectors), self.score_norm)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = [self._score(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        return torch.cat(out) if out else x.new_zeros(0, len(self.classes))


class GBEMethod(ZSLMethod):
    """GBE-MLZSL (module docstring). ``model``: keyword arguments of :class:`~zsl_lightning.nn.gbe.GBE`
    (Table III flags ``use_mlfef``, ``use_lid``, ``use_gem``, ``use_gla``; sizes); its input channels and
    ``word_dim`` come from the data. ``loss``: ``lam`` (λ of Eq. 17), ``use_diversity`` (ω of Eq. 15),
    ``reg_over`` (Eq. 16's variance axis). ``score_norm``: ``none`` (Eq. 13, default) | ``centre`` |
    ``standardise`` (per-image normalisation of the evaluation scores, not in the paper)."""

    label_modes = ("multi",)
    optimizer_roles = ("model",)

    def __init__(self, model: Mapping, word_dim: int, input: str = "maps", maps_layout: list | None = None,
                 single_scale: bool = False, backbone: Mapping | None = None, loss: Mapping | None = None,
                 optimizer: Callable | None = None, eval_batch_size: int = 64, score_norm: str = "none", **base):
        super().__init__(**base)
        if score_norm not in SCORE_NORMS:
            raise ConfigError(f"method.score_norm must be one of {', '.join(SCORE_NORMS)}; got '{score_norm}'.")
        self.score_norm = score_norm
        if input not in INPUTS:
            raise ConfigError(f"method gbe reads feature maps or images (data.source=cached|biam|images); the data "
                              f"gives '{input}' (data.view=pooled is for vector methods such as ridge_ml).")
        self.input_kind = input
        self.layout = tuple((int(s), int(c)) for s, c in (maps_layout or ()))
        self.loss_cfg = {"lam": 0.3, "use_diversity": True, "reg_over": "groups", **dict(loss or {})}
        self.eval_batch_size = int(eval_batch_size)
        kw = dict(model)
        self.backbone = None
        if input == "images":
            from zsl_lightning.nn.backbone import VGG19MultiScale

            bb = dict(backbone or {})
            self.backbone = VGG19MultiScale(weights=bb.get("weights"), widths=bb.get("widths", (64, 128, 256, 512, 512)),
                                            trainable=bool(bb.get("trainable", False)))
            channels = self.backbone.out_channels
        else:
            channels = dict(self.layout)
            if 14 not in channels:
                raise ConfigError(f"GBE needs a 14 x 14 map; the data has scales {sorted(channels)} (data.scales).")
        self.single_scale = bool(single_scale) or not ({28, 7} <= set(channels))
        if self.single_scale:
            # Only F^14 exists: ML-FEF (Eqs. 1-3) has nothing to fuse, GEM reads a 2x2 max-pool of F^14.
            kw["use_mlfef"], kw["single_scale"] = False, True
        kw.setdefault("in_channels", channels[14])
        if not self.single_scale:
            kw.setdefault("in_channels_28", channels[28])
        self.model = GBE(word_dim=int(word_dim), **kw)
        self.register_optimizer("model", optimizer, lambda: [p for p in self.parameters() if p.requires_grad])

    def features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """A batch ``x`` of the data → ``{scale: (B, C, s, s)}``."""
        if self.backbone is not None:
            from zsl_lightning.nn.backbone import preprocess

            return self.backbone(preprocess(x))
        from zsl_lightning.data.maps_store import unpack_maps

        return unpack_maps(x, self.layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``S`` ``(B, n, d_w)`` of a batch of packed maps or images."""
        return self.model(self.features(x))

    def training_step(self, batch, batch_idx):
        x, target = batch["x"][0], batch["target"][0]
        words = self.data.class_embeddings[self.data.train_cols]
        parts: dict[str, torch.Tensor] = {}

        def loss_fn():
            out = gbe_loss(self(x), words, target, lam=float(self.loss_cfg["lam"]),
                           use_diversity=bool(self.loss_cfg["use_diversity"]), reg_over=str(self.loss_cfg["reg_over"]))
            return out["loss"], {k: v.detach() for k, v in out.items()}

        self.step_collecting("model", loss_fn, parts)
        self.log_losses(parts, prog_bar=("loss",))

    def fit_scorer(self, split, task, classes, select_fn=None):
        classes = classes.to(self.device)
        vectors = split.class_embeddings.to(self.device)
        return GBEScorer(self, vectors[classes], classes, self.eval_batch_size, self.score_norm, vectors)
