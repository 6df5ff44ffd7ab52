"""The phases of a run and what they share.

A run (:func:`zsl_lightning.pipeline.run`) is a plan of named phases, each a function of one
:class:`RunState`. Built in:

* ``dev`` — trains on the dev split and selects, per task, the epoch with the best validation metric
  (``dev/selection.json``; a finished one is reused when the run is resumed);
* ``test`` — trains on trainval and reads the test numbers at the epochs ``eval.select`` names: those
  selected by ``dev`` (``val``), the last one (``last``), or the best test evaluation (``test_best``).

A method class may name other phases and provide them (:meth:`~zsl_lightning.methods.base.ZSLMethod.phase_plan`,
:meth:`~zsl_lightning.methods.base.ZSLMethod.custom_phases`); such a phase may update ``state.cfg`` (e.g. a
searched architecture) before the later phases build their method from it. Every phase that trains calls
:func:`fit_phase`, which hands the method its :class:`~zsl_lightning.context.PhaseContext` at construction.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zsl_lightning.errors import ConfigError, DivergenceError, ZSLError
from zsl_lightning.utils.config import instantiate_user_node
from zsl_lightning.utils.env import is_rank_zero
from zsl_lightning.utils.io import atomic_write_json
from zsl_lightning.utils.loggers import Loggers
from zsl_lightning.utils.rundir import (
    check_resumable_checkpoint,
    checkpoint_record,
    fingerprinted_config,
    finished_selection,
    resume_enabled,
)


@dataclass
class RunState:
    """What the phases of one run share: each reads it and adds what it produced.

    Attributes:
        cfg: the composed config (``data_info`` filled in); a phase may update it for the phases after it.
        datamodule: the loaded datamodule.
        out: the run directory.
        monitors: task → selection metric (``zsl_t1``, ``gzsl_H``, ...).
        fingerprint: the config's fingerprint (:func:`~zsl_lightning.utils.rundir.config_fingerprint`).
        loggers: the run's loggers (one W&B run for all phases, file loggers per phase).
        results: what ``results.json`` will hold.
        selected_epochs: task → epoch selected on validation (set by the ``dev`` phase).
    """

    cfg: DictConfig
    datamodule: Any
    out: Path
    monitors: dict[str, str]
    fingerprint: str
    loggers: Loggers
    results: dict[str, Any]
    selected_epochs: dict[str, int] | None = None

    @property
    def select(self) -> str:
        return str(self.cfg.eval.select)

    @property
    def epochs(self) -> int:
        return int(self.cfg.method.epochs)


def build_method(cfg: DictConfig, context=None):
    evaluation = OmegaConf.to_container(cfg.eval, resolve=True)
    # the context is passed to the constructor itself: Hydra would turn a dataclass kwarg into a config node
    make = instantiate_user_node(cfg.method, evaluation=evaluation, seed=int(cfg.seed), _partial_=True,
                                 _convert_="partial")
    return make(context=context)


def fit_phase(state: RunState, phase: str, split: str, phase_dir: Path, max_epochs: int,
              eval_epochs: set[int] | None, selected_epochs: dict[str, int] | None = None,
              select_on_test: bool = False):
    """Train phase ``phase`` on ``split`` (``dev`` or ``test``) and return the fitted module (its ``history``
    holds the evaluations).

    ``selected_epochs``: task -> epoch whose model ``checkpoints/best_<task>.ckpt`` holds (the epochs
    selected on validation, or the last one); ``None``: the best evaluation of the phase (see
    :class:`ZSLCheckpoint`). The method sees it in its context, for callbacks that show the selected model
    (e.g. the Fig. 4 feature plot). ``phase_dir/checkpoints/last.ckpt`` is resumed when present (``resume``).
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from zsl_lightning.callbacks import AtomicCheckpointIO, ZSLCheckpoint
    from zsl_lightning.context import PhaseContext
    from zsl_lightning.data.samplers import RandomBatches

    cfg, dm = state.cfg, state.datamodule
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    context = PhaseContext(phase=phase, split=dm.split(split), on_device=dm.device_split,
                           tasks=tuple(getattr(dm, "tasks", ("zsl", "gzsl"))),
                           eval_epochs=None if eval_epochs is None else frozenset(eval_epochs),
                           selected_epochs=dict(selected_epochs or {}), select_on_test=select_on_test,
                           train_prefix="train" if phase == "test" else f"{phase}/train",
                           compile=bool(cfg.trainer.get("compile", False)),
                           cuda_graphs=bool(cfg.trainer.get("cuda_graphs", False)))
    module = build_method(cfg, context)
    dm.use(split, getattr(module, "batch_plan", None) or RandomBatches(64))

    ckpt = ZSLCheckpoint(phase_dir / "checkpoints", state.monitors, epochs=selected_epochs,
                         config_hash=state.fingerprint)
    callbacks = [ckpt]
    for _, cb in (cfg.get("callbacks") or {}).items():
        if cb is not None and "_target_" in cb:
            callbacks.append(instantiate(cb))
    if not cfg.trainer.get("enable_progress_bar", True):  # trainer.enable_progress_bar=false wins
        from pytorch_lightning.callbacks.progress import ProgressBar

        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    ckpt_path, resume_epoch = None, None
    if phase == "test" and cfg.get("ckpt_path"):
        ckpt_path = str(cfg.ckpt_path)
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path '{ckpt_path}' does not exist.")
    elif resume_enabled(cfg) and ckpt.last_path.is_file():
        resume_epoch = check_resumable_checkpoint(ckpt.last_path, state.fingerprint, phase)
        ckpt_path = str(ckpt.last_path)
        print(f"[zsl-lightning] resuming the {phase} phase from {ckpt_path}", file=sys.stderr)
    # a resumed phase appends to its metric CSV (the rows of the epochs before resume_epoch stay)
    trainer = instantiate(trainer_node(cfg), max_epochs=int(max_epochs), callbacks=callbacks,
                          logger=state.loggers.for_phase(phase, keep_before_epoch=resume_epoch) or False,
                          plugins=[AtomicCheckpointIO()], enable_checkpointing=True,
                          default_root_dir=str(phase_dir), _convert_="partial")
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    except DivergenceError as e:
        raise diverged(e, phase, ckpt.last_path) from None
    except Exception as e:  # a failure *caused* by divergence (e.g. sampling from NaN) is reported as one
        err = module.divergence_error() if hasattr(module, "divergence_error") else None
        if err is None:
            raise
        raise diverged(err, phase, ckpt.last_path) from e
    if trainer.interrupted:
        raise KeyboardInterrupt
    warnings = getattr(getattr(module, "divergence", None), "warnings", [])
    if warnings:
        state.results.setdefault("warnings", []).extend(f"{phase} phase: {w}" for w in warnings)
    return module


#: keys of ``trainer:`` that the pipeline reads itself (they are not ``pytorch_lightning.Trainer`` arguments)
PIPELINE_TRAINER_OPTIONS = ("compile", "cuda_graphs")


def trainer_node(cfg: DictConfig) -> DictConfig:
    """``cfg.trainer`` without :data:`PIPELINE_TRAINER_OPTIONS` (what ``pl.Trainer`` is instantiated from)."""
    node = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key in PIPELINE_TRAINER_OPTIONS:
        node.pop(key, None)
    return OmegaConf.create(node)


def diverged(err: DivergenceError, phase: str, last_ckpt: Path) -> DivergenceError:
    """``err`` with the phase and the checkpoint that was kept (the last epoch whose weights were finite)."""
    kept = str(last_ckpt) if last_ckpt.is_file() else None
    tail = (f"\nThe last good checkpoint is kept: {kept}" if kept else
            "\nNo checkpoint was written (it diverged in its first epoch).")
    return DivergenceError(f"[{phase} phase] {err}{tail}", {**err.details, "phase": phase, "kept_checkpoint": kept})


def dev_phase(state: RunState) -> None:
    """Train on the dev split; per task, the epoch with the best validation metric becomes
    ``state.selected_epochs`` (kept in ``dev/selection.json``)."""
    from zsl_lightning.eval.selection import best_epochs, task_metrics

    cfg, results, monitors = state.cfg, state.results, state.monitors
    dev_dir = state.out / "dev"
    sel_file = dev_dir / "selection.json"
    dev_state = finished_selection(sel_file, cfg, state.fingerprint)
    if dev_state is None:
        dev = fit_phase(state, "dev", "dev", dev_dir, state.epochs, None)
        chosen = best_epochs(dev.history, monitors)
        if set(chosen) != set(monitors):
            raise ZSLError(f"validation never produced {sorted(monitors.values())}; nothing to select.")
        dev_state = {"epochs": chosen, "history": dev.history, "config_hash": state.fingerprint,
                     "config": fingerprinted_config(cfg)}
        if is_rank_zero():
            atomic_write_json(sel_file, dev_state)
    chosen = {k: int(v) for k, v in dev_state["epochs"].items()}
    by_epoch = {h["epoch"]: h for h in dev_state["history"]}
    results["selection"]["epochs"] = chosen
    results["validation"] = {k: v for t, e in chosen.items() for k, v in task_metrics(by_epoch[e], t).items()}
    results["history"] = {"dev": dev_state["history"]}
    results["objective"] = {t: by_epoch[e][monitors[t]] for t, e in chosen.items()}
    state.selected_epochs = chosen


def test_phase(state: RunState) -> None:
    """Train on trainval and read the test numbers at the epochs ``eval.select`` names (the headline), and
    the per-class numbers of those evaluations (``per_class``, :mod:`zsl_lightning.eval.per_class`)."""
    from zsl_lightning.eval.per_class import per_class_results
    from zsl_lightning.eval.selection import best_epochs, task_metrics

    select, epochs, monitors, results = state.select, state.epochs, state.monitors, state.results
    if select == "val":
        chosen = state.selected_epochs
        if chosen is None:
            raise ConfigError("eval.select=val: the test phase needs a dev phase before it in the method's "
                              "phase_plan (it reads the test numbers at the epochs the dev phase selected).")
        final = fit_phase(state, "test", "test", state.out, max(chosen.values()), set(chosen.values()),
                          selected_epochs=chosen)
    elif select == "last":
        chosen = {t: epochs for t in monitors}
        final = fit_phase(state, "test", "test", state.out, epochs, {epochs}, selected_epochs=chosen)
    else:  # test_best: the papers' protocol, labelled everywhere
        final = fit_phase(state, "test", "test", state.out, epochs, None, select_on_test=True)
        chosen = best_epochs(final.history, monitors)
    results["selection"]["epochs"] = chosen
    by_epoch = {h["epoch"]: h for h in final.history}
    missing = [t for t, e in chosen.items() if e not in by_epoch]
    if missing:
        raise ZSLError(f"no test evaluation at the selected epoch(s) for {missing}; the checkpoint may be from "
                       "a different run (delete its checkpoints/ or set resume=false).")
    results["headline"] = {k: v for t, e in chosen.items() for k, v in task_metrics(by_epoch[e], t).items()}
    split = final.context.split
    results["per_class"] = per_class_results(final.eval_details, chosen, split.label_mode, split.class_names)
    results.setdefault("history", {})["test"] = final.history
    results["checkpoints"] = checkpoint_record(state.out, chosen, select)


#: the phases every method can name in its plan
BUILTIN_PHASES: dict[str, Callable[[RunState], None]] = {"dev": dev_phase, "test": test_phase}
