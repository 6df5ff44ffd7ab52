"""The method API.

:class:`ZSLMethod` is a LightningModule with ``automatic_optimization = False`` that owns what every
method repeats: binding the training split on the device, per-epoch seeding (exact resume),
periodic ZSL/GZSL evaluation and its history, logging keys, and one canonical manual optimizer step.
A method writes its networks, its losses and :meth:`training_step`, and says how it scores classes:

* generative methods subclass :class:`~zsl_lightning.methods.generative.GenerativeZSLMethod` (WGAN-based ones
  :class:`~zsl_lightning.methods.wgan.WGANMethod`): evaluation synthesises features and fits a fresh
  classifier;
* other methods (ESZSL, embedding models) implement :meth:`ZSLMethod.fit_scorer` directly.

Optimizers are role-named partials (``optimizer_g``, ``optimizer_d``, ...) completed in
:meth:`configure_optimizers` in the order of :attr:`ZSLMethod.optimizer_roles`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from zsl_lightning.context import PhaseContext
from zsl_lightning.data.base import epoch_seed
from zsl_lightning.errors import ConfigError
from zsl_lightning.methods.divergence import DivergenceGuard
from zsl_lightning.utils.compile import compile_mode, compile_networks, strip_compiled_prefix


@dataclass
class ClassifierSettings:
    """Final softmax classifier (reference: N(0, 0.02) weights, Adam 1e-3, beta1 0.5, 25 epochs,
    batch = syn_num)."""

    epochs: int = 25
    lr: float = 1e-3
    beta1: float = 0.5
    batch_size: int | None = None  # None: syn_num, as in the released code
    weight_decay: float = 0.0
    init: str = "normal"  # normal: N(0, init_std) weights, zero bias (released code) | default: PyTorch's
    init_std: float = 0.02


@dataclass
class EvalSettings:
    """What ``eval:`` in the config holds (see ``conf/train.yaml``)."""

    select: str = "val"
    every: int = 1
    syn_num: int = 300
    gzsl_seen: str = "real"  # real | synthetic | both: seen-class features of the GZSL classifier
    calibrated_stacking: float = 0.0
    # single-label: the ZSL and GZSL classifiers share one synthetic unseen set (changes numbers; off)
    share_synthesis: bool = False
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    monitor: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # label-mode specific settings (e.g. multi-label top-K)

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> EvalSettings:
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        extra = {k: v for k, v in cfg.items() if k not in known}
        kw = {k: v for k, v in cfg.items() if k in known}
        kw["classifier"] = ClassifierSettings(**dict(kw.get("classifier") or {}))
        kw["monitor"] = dict(kw.get("monitor") or {})
        kw["extra"] = {**dict(kw.get("extra") or {}), **extra}
        s = cls(**kw)
        if s.gzsl_seen not in ("real", "synthetic", "both"):
            raise ConfigError(f"eval.gzsl_seen must be real | synthetic | both, got '{s.gzsl_seen}'.")
        if s.every < 1 or s.syn_num < 1:
            raise ConfigError("eval.every and eval.syn_num must be >= 1.")
        if s.classifier.init not in ("normal", "default"):
            raise ConfigError(f"eval.classifier.init must be normal | default, got '{s.classifier.init}'.")
        return s


class ZSLMethod(pl.LightningModule):
    """Base class of every method (manual optimization; evaluation owned here)."""

    #: label modes the method supports ("single", "multi")
    label_modes: tuple[str, ...] = ("single",)
    #: optimizer roles, in the order configure_optimizers returns them
    optimizer_roles: tuple[str, ...] = ()

    @classmethod
    def phase_plan(cls, select: str) -> tuple[str, ...]:
        """The named phases of a run of this method (:mod:`zsl_lightning.phases`), for ``eval.select``."""
        return ("dev", "test") if select == "val" else ("test",)

    @classmethod
    def custom_phases(cls) -> dict[str, Callable[[Any], None]]:
        """Phases of :meth:`phase_plan` that are not built in: name → ``fn(state: RunState)``."""
        return {}

    def __init__(self, evaluation: Mapping | None = None, seed: int = 0, grad_clip: float | None = None,
                 sampler=None, epochs: int | None = None, scheduler: Callable | None = None,
                 context: PhaseContext | None = None, label_modes: list[str] | None = None,
                 divergence: str | float = "stop"):
        """Options every method config shares.

        Args:
            evaluation: the ``eval:`` config node (passed by the pipeline).
            seed: run seed (passed by the pipeline); every epoch reseeds from (seed, epoch).
            grad_clip: clip each manual step's gradient norm to this value (manual optimization forbids
                the Trainer's ``gradient_clip_val``).
            sampler: the batch plan (``method.sampler``; see ``zsl_lightning.data.samplers``).
            epochs: training epochs (``method.epochs``; the Trainer's ``max_epochs`` interpolates it).
            scheduler: an LR-scheduler partial applied to every optimizer and stepped once per epoch
                (e.g. ``{_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 20}``).
            label_modes: the label modes this configuration runs in (``method.label_modes``), a subset of the
                class's: e.g. f-CLSWGAN's class runs both, but an MLP generator ``G(z, a)`` is single-label.
            divergence: ``stop`` | ``warn`` | a loss-magnitude threshold: what a non-finite loss, gradient norm
                or parameter does (:mod:`zsl_lightning.methods.divergence`).
            context: the phase this method is trained in (passed by the pipeline; see
                :class:`~zsl_lightning.context.PhaseContext`): its split, evaluation epochs, metric prefixes.
        """
        super().__init__()
        self.automatic_optimization = False
        if label_modes is not None:
            unknown = set(label_modes) - set(type(self).label_modes)
            if unknown:
                raise ConfigError(f"method.label_modes: {type(self).__name__} does not support {sorted(unknown)} "
                                  f"(it supports {list(type(self).label_modes)}).")
            self.label_modes = tuple(label_modes)
        self.eval_cfg = EvalSettings.from_config(evaluation)
        self.seed = int(seed)
        self.grad_clip = grad_clip
        self.divergence = DivergenceGuard(divergence)
        self.batch_plan = sampler
        self.epochs = epochs
        self._default_scheduler = scheduler
        self.data = None
        self.history: list[dict[str, float]] = []
        #: epoch -> per-class details of its evaluation (:mod:`zsl_lightning.eval.per_class`), kept in checkpoints
        self.eval_details: dict[int, dict] = {}
        self.context = context if context is not None else PhaseContext()
        self._optimizer_partials: dict[str, Callable] = {}
        self._scheduler_partials: dict[str, Callable] = {}
        # a checkpoint of torch.compile-wrapped networks (keys "..._orig_mod...") loads into eager ones
        self.register_load_state_dict_pre_hook(_strip_compiled_keys)

    # ------------------------------------------------------------------ optimizers
    def register_optimizer(self, role: str, partial: Callable | None, params, scheduler: Callable | None = None) -> None:
        if partial is None:
            raise ConfigError(f"{type(self).__name__} needs an optimizer for role '{role}'.")
        self._optimizer_partials[role] = (partial, params)
        if scheduler is not None:
            self._scheduler_partials[role] = scheduler

    def configure_optimizers(self):
        """Returns the optimizers in the order of :attr:`optimizer_roles` (and their epoch schedulers)."""
        opts, scheds = [], []
        for role in self.optimizer_roles:
            partial, params = self._optimizer_partials[role]
            params = params() if callable(params) else params
            opt = partial(params=list(params))
            opts.append(opt)
            make = self._scheduler_partials.get(role, self._default_scheduler)
            if make is not None:
                scheds.append({"scheduler": make(optimizer=opt), "interval": "epoch"})
        return (opts, scheds) if scheds else opts

    def optimizer(self, role: str):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        return opts[self.optimizer_roles.index(role)]

    def manual_step(self, roles: str | tuple[str, ...], loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One canonical manual update of the network(s) owned by ``roles``.

        Like ``toggle_optimizer``, but for one or several roles (f-VAEGAN updates encoder and generator
        from one loss): every parameter of the *other* optimizers is frozen before ``loss_fn`` builds the
        graph, so only these roles' networks receive gradients and change. Then ``zero_grad`` →
        ``manual_backward`` → optional ``clip_gradients`` (``method.grad_clip``) → ``step``. The loss (and the
        clipped gradient norm) go to the divergence guard, checked once per epoch (``method.divergence``).
        """
        roles = (roles,) if isinstance(roles, str) else tuple(roles)
        opts = [self.optimizer(r) for r in roles]
        own = {id(p) for o in opts for g in o.param_groups for p in g["params"]}
        frozen = []
        for r in self.optimizer_roles:
            for g in self.optimizer(r).param_groups:
                for p in g["params"]:
                    if id(p) not in own and p.requires_grad:
                        p.requires_grad_(False)
                        frozen.append(p)
        try:
            loss = loss_fn()
            for o in opts:
                o.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            for o in opts:
                if self.grad_clip:
                    self.clip_gradients(o, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
                o.step()
            self.divergence.observe("+".join(roles), loss, _grad_norm(opts) if self.grad_clip else None)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return loss.detach()

    def role_parameters(self) -> dict[str, list[torch.Tensor]]:
        """Role → the parameters its optimizer updates (empty before the optimizers exist)."""
        if self._trainer is None or not self.trainer.optimizers:
            return {}
        return {r: [p for g in self.optimizer(r).param_groups for p in g["params"]] for r in self.optimizer_roles}

    def divergence_error(self):
        """The :class:`~zsl_lightning.errors.DivergenceError` of the current epoch, if it diverged (else None)."""
        return self.divergence.error(type(self).__name__, self.current_epoch + 1, self.role_parameters())

    def step_collecting(self, roles: str | tuple[str, ...], loss_fn: Callable[[], tuple[torch.Tensor, dict]],
                        parts: dict) -> torch.Tensor:
        """:meth:`manual_step` for a ``loss_fn`` returning ``(loss, info)``; ``info`` (detached numbers to
        log) is merged into ``parts``."""

        def run():
            loss, info = loss_fn()
            parts.update(info)
            return loss

        return self.manual_step(roles, run)

    # ------------------------------------------------------------------ data binding and seeding
    def setup(self, stage: str) -> None:
        """Lightning calls this before restoring a checkpoint and before ``configure_optimizers``: the
        place for networks whose shape depends on the training split (see :meth:`build_for_split`)."""
        split = self.context.split
        if split is None:
            raise ConfigError(f"{type(self).__name__} was built without a split: pass context=PhaseContext(split=...).")
        if split.label_mode not in self.label_modes:
            raise ConfigError(
                f"method {type(self).__name__} supports label modes {self.label_modes}, but the data is "
                f"'{split.label_mode}'-label."
            )
        self.build_for_split(split)
        if self.context.compile or self.context.cuda_graphs:
            device = self.trainer.strategy.root_device if self._trainer is not None else self.device
            self._compile_mode = compile_mode(self.context.compile, self.context.cuda_graphs, device.type)
            compile_networks(self, self._compile_mode)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._new_graph_iteration()

    def _new_graph_iteration(self) -> None:
        """With CUDA graphs (``trainer.cuda_graphs``): a new iteration begins (a training step, an evaluation), so
        the memory of the graphs' outputs of the last one, all consumed, may be reused."""
        if getattr(self, "_compile_mode", None) == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()

    def build_for_split(self, split) -> None:
        """Hook: create networks that depend on the split trained on (e.g. Gao et al.'s categorizer with
        C_s + 1 outputs). Runs on the CPU before checkpoint restore, so a resumed run loads into them."""

    def on_fit_start(self) -> None:
        self.data = self.context.split_on(self.device)
        with torch.random.fork_rng(devices=self.rng_devices()):
            torch.manual_seed(epoch_seed(self.seed, -1, self.global_rank, stream=4))
            self.prepare(self.data)

    def rng_devices(self) -> list[int]:
        """The CUDA devices whose RNG ``torch.random.fork_rng`` must save (none on CPU)."""
        return [self.device.index or 0] if self.device.type == "cuda" else []

    def prepare(self, split) -> None:
        """Hook run once at fit start, after the split is on the device (e.g. pre-train a classifier)."""

    def on_train_epoch_start(self) -> None:
        self.divergence.reset()
        # Every epoch starts from a seed derived from (seed, epoch): a resumed run replays exactly.
        torch.manual_seed(epoch_seed(self.seed, self.current_epoch, self.global_rank, stream=1))

    def on_train_epoch_end(self) -> None:
        # before evaluation and before the checkpoint callback: a diverged epoch is neither evaluated nor saved
        self.divergence.check(type(self).__name__, self.current_epoch + 1, self.role_parameters())
        for sch in self._schedulers():
            sch.step()
        epoch = self.current_epoch + 1
        if self.should_evaluate(epoch):
            metrics = self.run_evaluation(epoch)
            self.history.append({"epoch": epoch, **metrics})
            prefix = self.data.eval_prefix
            self.log_dict({f"{prefix}/{k}": float(v) for k, v in metrics.items()}, on_epoch=True, sync_dist=False)

    def _schedulers(self):
        s = self.lr_schedulers()
        if s is None:
            return []
        return s if isinstance(s, list) else [s]

    def should_evaluate(self, epoch: int) -> bool:
        if self.context.eval_epochs is not None:
            return epoch in self.context.eval_epochs
        return epoch % self.eval_cfg.every == 0 or epoch == self.trainer.max_epochs

    # ------------------------------------------------------------------ evaluation
    def run_evaluation(self, epoch: int) -> dict[str, float]:
        """The metrics of the model after ``epoch``; its per-class numbers go to ``eval_details[epoch]``."""
        self._new_graph_iteration()
        was_training = self.training
        self.eval()
        details: dict = {}
        try:
            with torch.random.fork_rng(devices=self.rng_devices()):
                torch.manual_seed(epoch_seed(self.seed, epoch, 0, stream=2))
                metrics = self.evaluate(self.data, details)
        finally:
            self.train(was_training)
        if details:
            self.eval_details[int(epoch)] = details
        return metrics

    def evaluate(self, split, details: dict | None = None) -> dict[str, float]:
        """ZSL / GZSL metrics on ``split``; ``details``, when given, is filled with the per-class numbers
        (:mod:`zsl_lightning.eval.per_class`)."""
        if split.label_mode == "single":
            from zsl_lightning.eval.single_label import evaluate_single_label

            return evaluate_single_label(self, split, select_on_test=self.context.select_on_test, details=details)
        from zsl_lightning.eval.multi_label import evaluate_multi_label  # issue: multi-label

        return evaluate_multi_label(self, split, select_on_test=self.context.select_on_test, details=details)

    def fit_scorer(self, split, task: str, classes: torch.Tensor, select_fn=None):
        """Return a callable ``x -> scores`` over ``classes`` (attribute ``classes`` = global ids)."""
        raise NotImplementedError

    def classifier_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(epoch_seed(self.seed, self.current_epoch, 0, stream=3))

    # ------------------------------------------------------------------ logging / checkpoint state
    def log_losses(self, losses: Mapping[str, torch.Tensor | float], prog_bar: tuple[str, ...] = ()) -> None:
        if self._current_fx_name is None:  # called outside a Lightning loop (e.g. a test driving one step)
            return
        for k, v in losses.items():
            self.log(f"{self.context.train_prefix}/{k}", v, on_step=False, on_epoch=True, prog_bar=k in prog_bar)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["zsl_history"] = list(self.history)
        checkpoint["zsl_eval_details"] = dict(self.eval_details)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("zsl_history", []))
        self.eval_details = dict(checkpoint.get("zsl_eval_details", {}))


def _strip_compiled_keys(module, state_dict, *args) -> None:
    strip_compiled_prefix(state_dict)


def _grad_norm(opts) -> torch.Tensor:
    grads = [p.grad.detach() for o in opts for g in o.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


def freeze(module: nn.Module) -> nn.Module:
    """Exclude ``module``'s parameters from every gradient (e.g. f-CLSWGAN's pre-trained classifier)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module
