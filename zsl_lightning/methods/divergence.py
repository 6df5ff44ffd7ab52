"""The divergence guard of every manual step (``method.divergence``).

Every :meth:`~zsl_lightning.methods.base.ZSLMethod.manual_step` hands its loss (and, with ``method.grad_clip``,
the clipped gradient norm) to :meth:`DivergenceGuard.observe`. The checks stay on the training device — a
handful of element-wise kernels per step, no host synchronisation — and are read once per epoch by
:meth:`DivergenceGuard.check`, before the epoch's evaluation and checkpoint: a diverged epoch is never
evaluated and never saved, so ``checkpoints/`` keeps the last good model.

``method.divergence``:

* ``stop`` (default): a non-finite loss, gradient norm or parameter stops the run with a
  :class:`~zsl_lightning.errors.DivergenceError` naming the method, role, epoch, step and the last finite losses;
* ``warn``: the same message as a warning (``results.json`` ``warnings``), the run goes on — but a non-finite
  model is still never checkpointed, and evaluation still refuses non-finite scores;
* a number ``T > 0``: as ``stop``, and a loss with ``|loss| > T`` counts as diverged too (a GAN whose losses
  reach 1e31 while staying finite).

The epoch loop does not stop mid-epoch (that would need a synchronisation per step); a run that fails
mid-epoch *because* it diverged (e.g. sampling from NaN probabilities) is reported as diverged by
:func:`~zsl_lightning.phases.fit_phase`, which asks :meth:`DivergenceGuard.error` after any exception.
"""

from __future__ import annotations

import math
import sys

import torch

from zsl_lightning.errors import ConfigError, DivergenceError

#: what the first bad step of a role did (codes kept on the device)
REASONS = {1: "its loss is not finite", 2: "its gradient norm is not finite", 3: "|loss| exceeds the threshold"}


def parse_divergence(value) -> float | str:
    """``stop`` | ``warn`` | a positive loss-magnitude threshold (``method.divergence``)."""
    if isinstance(value, str) and value in ("stop", "warn"):
        return value
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(value, bool) or not (t > 0 and math.isfinite(t)):
        raise ConfigError(f"method.divergence must be stop | warn | a positive loss magnitude (e.g. 1e6), "
                          f"got {value!r}.")
    return t


class DivergenceGuard:
    """Device-side records of the current epoch: manual steps taken (all roles), and per role its first bad step
    and why, and its last finite loss."""

    def __init__(self, mode="stop"):
        self.mode = parse_divergence(mode)
        self.threshold = self.mode if isinstance(self.mode, float) else None
        self.steps: torch.Tensor | None = None  # manual steps of the epoch, every role together
        self.roles: dict[str, dict[str, torch.Tensor]] = {}
        self.warnings: list[str] = []

    def reset(self) -> None:
        """Start of an epoch: counters restart (the last finite losses are kept)."""
        if self.steps is not None:
            self.steps.zero_()
        for rec in self.roles.values():
            rec["first_bad"].fill_(-1)
            rec["code"].zero_()

    def observe(self, role: str, loss: torch.Tensor, grad_norm: torch.Tensor | None = None) -> None:
        """Record one manual step of ``role`` (device ops only)."""
        loss = loss.detach().float()
        if loss.dim():
            loss = loss.sum()
        dev = loss.device
        if self.steps is None or self.steps.device != dev:
            self.steps = torch.zeros((), dtype=torch.long, device=dev)
            self.roles = {}
        rec = self.roles.get(role)
        if rec is None:
            rec = self.roles[role] = {"first_bad": torch.full((), -1, dtype=torch.long, device=dev),
                                      "code": torch.zeros((), dtype=torch.long, device=dev),
                                      "last": torch.full((), float("nan"), device=dev)}
        self.steps.add_(1)
        finite = torch.isfinite(loss)
        code = torch.where(finite, 0, 1)
        if self.threshold is not None:
            code = torch.where(finite & (loss.abs() > self.threshold), 3, code)
        if grad_norm is not None:
            code = torch.where((code == 0) & ~torch.isfinite(grad_norm.detach().float().to(dev)), 2, code)
        new = (rec["first_bad"] < 0) & (code > 0)
        rec["first_bad"].copy_(torch.where(new, self.steps, rec["first_bad"]))
        rec["code"].copy_(torch.where(new, code, rec["code"]))
        rec["last"].copy_(torch.where((rec["first_bad"] < 0) & finite, loss, rec["last"]))

    def _report(self, method: str, epoch: int, params: dict[str, list[torch.Tensor]]) -> tuple[str, dict] | None:
        bad = {r: (int(rec["first_bad"]), int(rec["code"])) for r, rec in self.roles.items()}
        bad = {r: v for r, v in bad.items() if v[0] >= 0}
        nonfinite_params = [r for r, ps in params.items() if not all(bool(torch.isfinite(p).all()) for p in ps)]
        if not bad and not nonfinite_params:
            return None
        last = {r: float(rec["last"]) for r, rec in self.roles.items()}
        if bad:
            role, (step, code) = min(bad.items(), key=lambda kv: kv[1][0])
            why = REASONS[code] + (f" ({self.threshold:g})" if code == 3 else "")
        else:
            role, step, why = nonfinite_params[0], None, "its parameters are not finite"
        where = f"epoch {epoch}" + (f", manual step {step} of the epoch" if step is not None else "")
        lasts = ", ".join(f"{r}={v:.4g}" for r, v in last.items() if math.isfinite(v)) or "none"
        msg = (f"Training diverged: {method}, role '{role}', {where}: {why}. Last finite losses: {lasts}.\n"
               "Lower the learning rates (method.optimizer_<role>.lr), clip gradients (method.grad_clip=...), or "
               "set method.divergence=warn to keep training.")
        details = {"method": method, "role": role, "epoch": epoch, "step": step, "reason": why,
                   "last_finite_losses": {r: v for r, v in last.items() if math.isfinite(v)},
                   "non_finite_parameters": nonfinite_params}
        return msg, details

    def error(self, method: str, epoch: int, params: dict[str, list[torch.Tensor]]) -> DivergenceError | None:
        """The error describing this epoch's divergence, or ``None`` if it did not diverge."""
        rep = self._report(method, epoch, params)
        return None if rep is None else DivergenceError(*rep)

    def check(self, method: str, epoch: int, params: dict[str, list[torch.Tensor]]) -> None:
        """End of an epoch (one synchronisation): raise (``stop``, a threshold) or warn (``warn``)."""
        err = self.error(method, epoch, params)
        if err is None:
            return
        if self.mode == "warn":
            self.warnings.append(str(err).splitlines()[0])
            print(f"[zsl-lightning] warning: {err}", file=sys.stderr)
            return
        raise err


def all_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter of ``module`` is finite (one synchronisation)."""
    params = module.parameters() if isinstance(module, torch.nn.Module) else ()
    flags = [torch.isfinite(p).all() for p in params]
    return bool(torch.stack(flags).all()) if flags else True


def refuse_non_finite(t: torch.Tensor, what: str) -> None:
    """Evaluation never turns non-finite numbers into metrics: a NaN score would rank as chance, not fail."""
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise DivergenceError(f"Evaluation refused: {what} contain non-finite values (the model diverged). "
                              "Lower the learning rates or set method.grad_clip.", {"reason": f"non-finite {what}"})
