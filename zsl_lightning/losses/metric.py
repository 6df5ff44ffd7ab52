"""Metric-learning losses of VS-Boost (Li et al., IJCAI 2023): semantic InfoNCE (Eq. 3) and the
relational binary cross-entropy between a learnable feature similarity and the semantic cosine
similarity (Eqs. 4-7).

Every function works on whole batches (no Python loops) and returns the batch mean, i.e. the
expectation ``E_h[...]`` of the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsl_lightning.errors import ConfigError

SIMILARITY_TARGETS = ("clamp", "rescale")


def semantic_infonce(pred: torch.Tensor, target: torch.Tensor, class_embeddings: torch.Tensor,
                     temperature: float, normalize: bool = False) -> torch.Tensor:
    """Eq. (3) of VS-Boost, the semantic metric loss ``L_SM``:

    ``−log exp(ãᵀa⁺/τ) / (exp(ãᵀa⁺/τ) + Σ_{i=1}^{N−1} exp(ãᵀa_i⁻/τ))``, averaged over the batch,

    with ``ã = R(h)`` the regressed semantic vector of a refined feature (``pred``, B × A), ``a⁺`` the
    embedding of its class and ``a_i⁻`` the N−1 other candidate classes (``class_embeddings``, N × A,
    one row per candidate; ``target`` holds each row's index into it). It is a cross-entropy over the
    N logits ``ãᵀa_n / τ``. ``normalize=True`` L2-normalises ``ã`` and the ``a_n`` first (cosine
    logits); the paper writes a plain inner product, the default.
    """
    if temperature <= 0:
        raise ConfigError(f"the InfoNCE temperature must be > 0, got {temperature}.")
    if normalize:
        pred = F.normalize(pred, dim=-1)
        class_embeddings = F.normalize(class_embeddings, dim=-1)
    logits = pred @ class_embeddings.T / temperature
    return F.cross_entropy(logits, target)


def similarity_target(a_i: torch.Tensor, a_j: torch.Tensor, mode: str = "clamp") -> torch.Tensor:
    """The ground truth ``ζ = cos(a_i, a_j)`` of Eq. (5), mapped into [0, 1] as the theorem after Eq. (5)
    requires (the paper does not say how):

    * ``clamp``: ``min(max(cos, 0), 1)`` — dissimilar classes (cos ≤ 0) are "not similar" (0); for
      non-negative embeddings such as attributes it changes nothing but float round-off above 1;
    * ``rescale``: ``(1 + cos) / 2`` — keeps the order of negative similarities, but maps orthogonal
      classes to 0.5.
    """
    cos = F.cosine_similarity(a_i, a_j, dim=-1, eps=1e-12)
    if mode == "clamp":
        return cos.clamp(0.0, 1.0)
    if mode == "rescale":
        return ((1.0 + cos) / 2.0).clamp(0.0, 1.0)
    raise ConfigError(f"method.similarity_target must be one of {SIMILARITY_TARGETS}, got '{mode}'.")


def relational_bce(logit: torch.Tensor, zeta: torch.Tensor) -> torch.Tensor:
    """Eq. (5) of VS-Boost per pair (not averaged):

    ``L_bce(h_i, h_j) = −[ζ log F(h_i, h_j) + (1 − ζ) log(1 − F(h_i, h_j))]`` with ``F = σ(logit)``
    (Eq. 4) and ``ζ = cos(a_i, a_j) ∈ [0, 1]``.

    Computed from the logit ``w^F (h_i ∘ h_j)`` with the log-sum-exp form of binary cross-entropy, so a
    saturated sigmoid never gives ``log 0``. Its derivative with respect to ``ξ = F`` is Eq. (6),
    ``(ξ − ζ) / (ξ (1 − ξ))``, zero only at ``ξ = ζ`` (hence ``∂L/∂logit = ξ − ζ``).
    """
    return F.binary_cross_entropy_with_logits(logit, zeta, reduction="none")


def relational_metric_loss(logit_pos: torch.Tensor, zeta_pos: torch.Tensor, logit_neg: torch.Tensor,
                           zeta_neg: torch.Tensor) -> torch.Tensor:
    """Eq. (7) of VS-Boost: ``L_RM = E_h[L_bce(h, h⁺) + L_bce(h, h⁻)]`` — for each anchor ``h`` one
    positive pair (a random instance of its class) and one negative pair (a random instance of another
    class), each scored by Eq. (5); the mean over anchors of the sum of the two terms."""
    return (relational_bce(logit_pos, zeta_pos) + relational_bce(logit_neg, zeta_neg)).mean()
