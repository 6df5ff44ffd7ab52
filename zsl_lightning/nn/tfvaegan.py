"""The three networks tf-VAEGAN adds to f-VAEGAN (Narayan, Gupta, Khan, Snoek, Shao, ECCV 2020).

* :class:`FeedbackGenerator` — f-VAEGAN's generator ``G(z, a)`` whose last hidden layer accepts an additive
  feedback: ``g_l ← g_l + δ · x_f`` (the paper's feedback update, Sec. 3.2 "Feedback Module", Eq. (5) as we
  read the arXiv version);
* :class:`SemanticDecoder` — the semantic embedding decoder ``Dec: x → â`` (Sec. 3.1, trained with the
  cycle-consistency loss of Eq. (3)); its hidden layer ``h`` is the "latent embedding" fed back to ``G`` and
  concatenated to the classifier's features (Sec. 3.3, ``x ⊕ â ⊕ h``);
* :class:`FeedbackModule` — ``F: h → x_f``, two fully connected layers with LeakyReLU(0.2), mapping the
  decoder's latent embedding into the generator's hidden space.

The released code's widths: every hidden layer 4,096 (``--ngh``); ``F`` is 4,096 → 4,096 → 4,096.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.nn.mlp import MLP


class FeedbackGenerator(MLP):
    """``G(z, a)`` of f-VAEGAN (an :class:`~zsl_lightning.nn.mlp.MLP` over ``[z; a]``, same parameters and
    initialisation) with an optional additive feedback on its last hidden activation:

    ``x̃ = out_act(W · (g_l(z, a) + feedback) + b)``, where ``feedback`` is ``δ · F(h)`` (the caller scales it:
    δ = ``a1`` while training, ``a2`` when synthesising, as in the released code). ``feedback=None`` is the
    plain first pass, identical to :class:`MLP`.
    """

    @property
    def hidden_width(self) -> int:
        return self.head.in_features

    def forward(self, *inputs: torch.Tensor, feedback: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(self._cat(inputs))
        if feedback is not None:
            h = h + feedback
        return self.out_act(self.head(h))


class SemanticDecoder(nn.Module):
    """``Dec(x) = â``: ``x → hidden (LeakyReLU 0.2) → d_a``, the output L2-normalised per row (the released
    decoder has no output non-linearity and normalises, matching the L2-normalised class embeddings).

    :meth:`forward_with_hidden` also returns the last hidden activation ``h``, the latent embedding that the
    feedback module reads (Sec. 3.2) and the classifier concatenates (Sec. 3.3).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, normalize: bool = True,
                 negative_slope: float = 0.2, init: str = "normal", init_std: float = 0.02):
        super().__init__()
        self.net = MLP(int(in_dim), hidden, int(out_dim), "leaky_relu", None, negative_slope,
                       init=init, init_std=init_std)
        self.normalize = bool(normalize)

    @property
    def hidden_width(self) -> int:
        return self.net.head.in_features

    @property
    def out_dim(self) -> int:
        return self.net.out_dim

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = self.net.forward_with_hidden(x.flatten(1))
        return (F.normalize(out, dim=1) if self.normalize else out), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]


class FeedbackModule(MLP):
    """``F(h) = x_f``: ``h → hidden LeakyReLU(0.2) → out_dim LeakyReLU(0.2)`` (both layers activated, as
    released). ``in_dim`` is the decoder's hidden width, ``out_dim`` the generator's last hidden width."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, negative_slope: float = 0.2,
                 init: str = "normal", init_std: float = 0.02):
        super().__init__(int(in_dim), hidden, int(out_dim), "leaky_relu", "leaky_relu", negative_slope,
                         init=init, init_std=init_std)
