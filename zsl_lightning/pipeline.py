"""What ``python train.py`` does: data → the method's plan of phases → results.json + a printed table.

The plan is a list of named phases (:mod:`zsl_lightning.phases`): ``dev`` → ``test`` for ``eval.select=val``,
``test`` alone for ``last`` and ``test_best`` (see :mod:`zsl_lightning.eval.selection`). A method class may
declare another plan and provide the phases it adds (:meth:`ZSLMethod.phase_plan`,
:meth:`ZSLMethod.custom_phases`). The run directory is described in :mod:`zsl_lightning.utils.rundir`.

A run that dies keeps what it finished: files are written atomically, and rerunning with the same
``hydra.run.dir`` resumes (``resume=auto``): a finished dev phase is not repeated, and the test phase
continues from its ``last.ckpt``. Both carry a fingerprint of the config
(:func:`~zsl_lightning.utils.rundir.config_fingerprint`): a rerun with different overrides in the same
directory is refused instead of silently reusing them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from zsl_lightning.cli import main_entry, objective
from zsl_lightning.errors import ConfigError, DivergenceError
from zsl_lightning.phases import BUILTIN_PHASES, RunState, build_method
from zsl_lightning.utils.config import (
    check_mandatory_values,
    check_run_options,
    choice_name,
    hydra_choice,
    instantiate_user_node,
    reconcile_trainer,
)
from zsl_lightning.utils.env import configure_environment, is_rank_zero
from zsl_lightning.utils.io import atomic_write_json
from zsl_lightning.utils.loggers import Loggers
from zsl_lightning.utils.rundir import check_run_dir, config_fingerprint, write_resolved_config
from zsl_lightning.utils.schema import check_config_types

__all__ = ["DEFAULT_MONITORS", "build_datamodule", "build_method", "instantiate_user_node", "main_entry",
           "monitors_for", "objective", "phase_plan", "run"]

DEFAULT_MONITORS = {
    "single": {"zsl": "zsl_t1", "gzsl": "gzsl_H"},
    "multi": {"zsl": "zsl_mAP", "gzsl": "gzsl_mAP", "std": "std_mAP"},  # std: data.mode=standard (Table 4)
}


def build_datamodule(cfg: DictConfig):
    dm = instantiate_user_node(cfg.data, _convert_="all")
    dm.load()
    return dm


def monitors_for(cfg: DictConfig, label_mode: str, tasks=("zsl", "gzsl")) -> dict[str, str]:
    """The selection metric of each task the datamodule evaluates (``dm.tasks``), ``eval.monitor`` winning."""
    custom = cfg.eval.get("monitor") or {}
    mons = {t: k for t, k in DEFAULT_MONITORS[label_mode].items() if t in tasks}
    mons.update({str(k): str(v) for k, v in dict(custom).items()})
    return mons


def method_class(cfg: DictConfig) -> type:
    """The class whose :meth:`~ZSLMethod.phase_plan` the run follows: ``run_plan`` when the config names one
    (``method=zeronas``: search and derive around its base method), else the class ``method._target_`` names."""
    from hydra.utils import get_class

    from zsl_lightning.methods.base import ZSLMethod

    if cfg.get("run_plan"):
        return get_class(str(cfg.run_plan))
    try:
        return get_class(str(cfg.method._target_))
    except Exception:  # an unknown target is reported when the method is built, as it always was
        return ZSLMethod


def phase_plan(cfg: DictConfig) -> list[tuple[str, Callable[[RunState], None]]]:
    """The named phases of this run, in order, with their implementations; ``eval.dev_only`` ends the plan
    after its ``dev`` phase."""
    cls = method_class(cfg)
    names = list(cls.phase_plan(str(cfg.eval.select)))
    if bool(cfg.eval.get("dev_only", False)):
        if "dev" not in names:
            raise ConfigError(f"eval.dev_only=true, but {cls.__name__}'s phase plan {names} has no dev phase.")
        names = names[: names.index("dev") + 1]
    custom = dict(cls.custom_phases())
    clash = sorted(set(custom) & set(BUILTIN_PHASES))
    if clash:
        raise ConfigError(f"{cls.__name__}.custom_phases() redefines the built-in phase(s) {clash}.")
    known = {**BUILTIN_PHASES, **custom}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"{cls.__name__}'s phase plan names {unknown}, which neither the pipeline "
                          f"({sorted(BUILTIN_PHASES)}) nor {cls.__name__}.custom_phases() provides.")
    return [(n, known[n]) for n in names]


def run(cfg: DictConfig) -> dict:
    """Run one job; returns the results dict (also written to ``<output_dir>/results.json``)."""
    state = start_run(cfg)
    plan = phase_plan(cfg)
    try:
        for _name, phase in plan:
            phase(state)
        report(state)
        return state.results
    except DivergenceError as e:
        report_diverged(state, e)
        raise
    finally:
        state.loggers.finish(state.results if "headline" in state.results else None)


def start_run(cfg: DictConfig) -> RunState:
    """Check the config, load the data, write ``config_resolved.yaml``, open the results."""
    from zsl_lightning.eval.selection import describe_selection

    configure_environment(cfg)
    out = Path(cfg.paths.output_dir)
    check_run_dir(out)
    check_run_options(cfg)
    reconcile_trainer(cfg)
    check_mandatory_values(cfg)
    check_config_types(cfg)
    dm = build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    fingerprint = config_fingerprint(cfg)
    write_resolved_config(out, cfg)
    if cfg.get("print_config", True):
        from zsl_lightning.utils.rich_utils import print_config_tree

        print_config_tree(cfg)

    tasks = getattr(dm, "tasks", ("zsl", "gzsl"))
    monitors = monitors_for(cfg, dm.label_mode, tasks)
    select = str(cfg.eval.select)
    results: dict[str, Any] = {
        "status": "ok",
        "method": choice_name("method", cfg),
        "data": dm.info["name"],
        "seed": int(cfg.seed),
        "selection": {"mode": select, "description": describe_selection(select, tasks), "monitors": monitors},
        "config": "config_resolved.yaml",
    }
    for note in getattr(dm, "notices", []):
        print(f"[zsl-lightning] notice: {note}", file=sys.stderr)
        results.setdefault("notes", []).append(note)
    if hydra_choice("variant"):
        results["variant"] = hydra_choice("variant")
    notes = getattr(dm, "notes", None)  # e.g. the feature-map datamodules' single-scale fallback
    if notes:
        results["data_notes"] = dict(notes)
    return RunState(cfg=cfg, datamodule=dm, out=out, monitors=monitors, fingerprint=fingerprint,
                    loggers=Loggers(cfg), results=results)


def report_diverged(state: RunState, err: DivergenceError) -> None:
    """``results.json`` of a diverged run: ``"status": "diverged"``, what diverged, and no headline (the
    numbers of a diverged model are not results)."""
    res = state.results
    res["status"] = "diverged"
    res.pop("headline", None)
    res.pop("checkpoints", None)
    res["divergence"] = {"message": str(err), **err.details}
    if is_rank_zero():
        atomic_write_json(state.out / "results.json", res)


def report(state: RunState) -> None:
    """Write ``results.json`` and print the results table (``eval.dev_only``: validation numbers only,
    nothing printed)."""
    from zsl_lightning.eval.results import print_results, too_perfect_warnings

    dev_only = bool(state.cfg.eval.get("dev_only", False))
    if dev_only:
        state.results["headline"] = {}
    for w in too_perfect_warnings(state.results.get("headline") or {}, dict(state.cfg.data_info)):
        print(f"[zsl-lightning] warning: {w}", file=sys.stderr)
        state.results.setdefault("warnings", []).append(w)
    if is_rank_zero():  # under DDP every rank evaluates identically; one writes and prints
        atomic_write_json(state.out / "results.json", state.results)
        if not dev_only:
            print_results(state.results)
