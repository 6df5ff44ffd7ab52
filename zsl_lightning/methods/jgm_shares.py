"""How much of each JGM network's update each term of its objective drives (issue 17).

Eq. (12) of Gao et al. 2018 updates G with ``L_recon + α L_G + β L_percept`` and Eq. (11) updates E with
``L_KL + L_recon + β L_percept``. Whether α = 0.01 leaves L_G any say depends on the scale of L_recon (summed or
averaged over the feature dimensions, Bernoulli or Gaussian), which the paper does not state. The *share* of a
term is the L2 norm of its gradient with respect to the network's parameters divided by the sum of those norms
over the terms: the shares add up to 1, and a term at 0.001 moves the network a thousandth as much as the rest.

``GradShareProbe`` measures them inside a real training run (``scripts/jgm_grad_shares.py`` prints the table
of ``docs/methods/jgm.md``); ``jgm_shares`` measures them on one batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from pytorch_lightning import Callback


def gradient_norms(terms: Mapping[str, torch.Tensor], params: Iterable[torch.nn.Parameter]) -> dict[str, float]:
    """``‖∇_θ term‖₂`` for each term (θ = ``params``, all of them as one vector); 0 for a term that does not reach θ."""
    params = [p for p in params if p.requires_grad]
    norms = {}
    for name, term in terms.items():
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        sq = sum((g.double().pow(2).sum() for g in grads if g is not None), torch.zeros((), dtype=torch.float64))
        norms[name] = float(sq.sqrt())
    return norms


def gradient_shares(terms: Mapping[str, torch.Tensor], params: Iterable[torch.nn.Parameter]) -> dict[str, float]:
    """``‖∇_θ term‖ / Σ_terms ‖∇_θ term‖`` for each term: the shares add up to 1 (all 0 if no term reaches θ)."""
    norms = gradient_norms(terms, params)
    total = sum(norms.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in norms.items()}


def jgm_shares(method, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, float]]:
    """Shares of G's terms (Eq. 12: ``gan`` = α L_G, ``recon``, ``percept`` = β L_percept) and, with the CVAE,
    of E's (Eq. 11: ``kl``, ``recon``, ``percept``) on one batch of real seen features ``x`` with global labels
    ``y``. The noise is drawn as in ``JGM.training_step``, under a forked RNG (the run's stream is untouched)."""
    a = method.data.class_embeddings[y]
    y_local = method.local_labels(y)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), torch.enable_grad():
        eps = torch.randn(len(x), method.noise_dim, device=x.device)
        z_p = torch.randn(len(x), method.noise_dim, device=x.device)
        out = {"G": gradient_shares(method.generator_terms(x, a, y_local, eps, z_p), method.generator.parameters())}
        if method.use_cvae:
            out["E"] = gradient_shares(method.encoder_terms(x, a, eps, z_p), method.encoder.parameters())
    return out


class GradShareProbe(Callback):
    """Measure :func:`jgm_shares` on the first training batch of the given (0-based) epochs of the first fit
    (the dev phase when there is one) and write ``{epoch: shares}`` to ``path`` (JSON) after each."""

    def __init__(self, epochs: Iterable[int] = (0,), path: str = "grad_shares.json"):
        self.epochs = {int(e) for e in epochs}
        self.path = Path(path)
        self.found: dict[int, dict] = {}
        self._done_fits = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        epoch = trainer.current_epoch
        if self._done_fits or batch_idx != 0 or epoch not in self.epochs or epoch in self.found:
            return
        self.found[epoch] = jgm_shares(pl_module, batch["x"][0], batch["target"][0])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({str(k): v for k, v in sorted(self.found.items())}, indent=1))

    def on_fit_end(self, trainer, pl_module) -> None:
        self._done_fits += 1
