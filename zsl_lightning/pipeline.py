"""What ``python train.py`` does: data → (dev phase →) test phase → results.json + a printed table.

See :mod:`zsl_lightning.eval.selection` for the three selection modes. Every run directory holds:

``config_resolved.yaml``   the composed config with the data-derived dims filled in
``dev/``                   (``eval.select=val``) the validation phase: checkpoints, logs, ``selection.json``
``checkpoints/``           ``last.ckpt``, ``best_zsl.ckpt``, ``best_gzsl.ckpt`` of the test phase
``csv/``                   metric logs (and tensorboard/ or wandb/ when enabled)
``results.json``           headline numbers, how they were selected, full evaluation histories

A run that dies keeps what it finished: files are written atomically, and rerunning with the same
``hydra.run.dir`` resumes (``resume=auto``): a finished dev phase is not repeated, and the test phase
continues from its ``last.ckpt``. Both carry a fingerprint of the config (:func:`config_fingerprint`):
a rerun with different overrides in the same directory is refused instead of silently reusing them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from zsl_lightning.errors import ConfigError, ZSLError
from zsl_lightning.utils.io import atomic_write_json, atomic_write_text

DEFAULT_MONITORS = {
    "single": {"zsl": "zsl_t1", "gzsl": "gzsl_H"},
    "multi": {"zsl": "zsl_mAP", "gzsl": "gzsl_mAP", "std": "std_mAP"},  # std: data.mode=standard (Table 4)
}


# ---------------------------------------------------------------------------------------- environment
def configure_environment(cfg: DictConfig) -> None:
    """W&B runs offline unless credentials exist; tests and CI never need a network."""
    if "WANDB_MODE" not in os.environ and not _wandb_credentials():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    import logging

    pl_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertising) for f in pl_log.filters):
        pl_log.addFilter(_DropAdvertising())
    import warnings

    # evaluation is computed identically on every DDP rank (same weights, same seeds): no sync needed
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    import torch

    if torch.cuda.is_available():
        torch.set_float32_matmul_precision(str(cfg.get("matmul_precision", "high")))


class _DropAdvertising:
    """Lightning prints a product tip at every Trainer start; keep the logs about the run."""

    def filter(self, record) -> bool:
        return "litlogger" not in str(record.getMessage())


def _wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


# ---------------------------------------------------------------------------------------- building blocks
def instantiate_user_node(node, **kwargs):
    """``hydra.utils.instantiate``, except that a :class:`ZSLError` raised by a constructor (a bad config
    value) reaches the user as itself — Hydra would wrap it in an ``InstantiationException`` (exit code 1)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while cause is not None and not isinstance(cause, ZSLError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


#: what to tell the user about a mandatory (``???``) config value they did not set
MISSING_HINTS = {
    "data.name": "data=xlsa17 reads <data.root>/<data.name>/{res101.mat, att_splits.mat}: pass "
                 "data.name=<folder> (e.g. AWA2) and data.root=/path/to/xlsa17 when the folders are not under "
                 "${paths.data_dir}/xlsa17 — or pick a named benchmark (data=cub, data=awa2, ...).",
}


def missing_value_error(keys) -> ConfigError:
    """A :class:`ConfigError` naming each mandatory (``???``) config value that was not set."""
    keys = sorted(keys)
    lines = [f"Missing mandatory config value{'s' if len(keys) > 1 else ''}: {', '.join(keys)}."]
    lines += [f"  {k}: {MISSING_HINTS.get(k, f'set it on the command line ({k}=...) or in a config file.')}"
              for k in keys]
    return ConfigError("\n".join(lines))


def check_mandatory_values(cfg: DictConfig) -> None:
    """Every ``???`` of the composed config must be set before anything is built (``data_info`` is
    filled in from the data files, Hydra's own node is not ours)."""
    missing = [k for k in _literal_missing_keys(cfg) if k != "data_info" and not k.startswith("hydra.")]
    if missing:
        raise missing_value_error(missing)


def _literal_missing_keys(node, prefix: str = ""):
    """Keys whose value is ``???`` itself (``OmegaConf.missing_keys`` would also resolve interpolations,
    and ``${data_info.*}`` cannot be resolved yet)."""
    from omegaconf import DictConfig

    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        full = f"{prefix}{key}" if isinstance(node, DictConfig) else f"{prefix[:-1]}[{key}]"
        if OmegaConf.is_missing(node, key):
            yield full
            continue
        child = node._get_node(key)
        if OmegaConf.is_config(child) and not OmegaConf.is_interpolation(node, key) and not child._is_none():
            yield from _literal_missing_keys(child, full + ".")


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


def build_method(cfg: DictConfig, context=None):
    evaluation = OmegaConf.to_container(cfg.eval, resolve=True)
    # the context is passed to the constructor itself: Hydra would turn a dataclass kwarg into a config node
    make = instantiate_user_node(cfg.method, evaluation=evaluation, seed=int(cfg.seed), _partial_=True,
                                 _convert_="partial")
    return make(context=context)


class _Loggers:
    """Loggers of a job: file loggers get one version per phase; a W&B run is shared by both phases."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.shared: dict[str, Any] = {}

    def for_phase(self, phase: str) -> list:
        from hydra.utils import instantiate

        out = []
        for key, lcfg in (self.cfg.get("logger") or {}).items():
            if lcfg is None or "_target_" not in lcfg:
                continue
            if "Wandb" in str(lcfg._target_):
                if key not in self.shared:
                    extra = {}
                    if lcfg.get("group") in (None, ""):
                        extra["group"] = _multirun_group()
                    self.shared[key] = instantiate(lcfg, **extra)
                    self.shared[key].log_hyperparams(_flat_config(self.cfg))
                out.append(self.shared[key])
            else:
                out.append(instantiate(lcfg, version=phase))
        return out

    def finish(self, results: dict | None) -> None:
        for lg in self.shared.values():
            try:
                if results:
                    lg.experiment.summary.update({f"final/{k}": v for k, v in results["headline"].items()})
                    lg.experiment.summary["final/selection"] = results["selection"]["mode"]
            finally:
                import wandb

                wandb.finish()
        self.shared.clear()


def _multirun_group() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return f"{hc.job.name}-{Path(hc.sweep.dir).name}"
    except Exception:  # not under Hydra (tests, notebooks)
        pass
    return None


def _flat_config(cfg: DictConfig) -> dict:
    out = {}

    def walk(prefix, node):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = node

    walk("", resolved_config(cfg))
    return out


def resolved_config(cfg: DictConfig) -> dict:
    """The resolved config as plain containers, without Hydra's own node."""
    out = {}
    for k in cfg:
        if k == "hydra":
            continue
        v = cfg[k]
        out[k] = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
    return out


#: config keys that do not change what a run computes: where files go, what is printed or logged, and
#: what only ends a run early (eval.dev_only). Everything else is part of the fingerprint.
FINGERPRINT_EXCLUDE = ("hydra", "paths", "resume", "ckpt_path", "print_config", "logger", "callbacks", "tags",
                       "task_name", "optimized_metric", "data_info", "data.root", "data.cache_dir", "eval.dev_only",
                       "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps")


def fingerprinted_config(cfg: DictConfig) -> dict:
    """The resolved config without :data:`FINGERPRINT_EXCLUDE`."""
    conf = resolved_config(cfg)
    for key in FINGERPRINT_EXCLUDE:
        *parents, leaf = key.split(".")
        node = conf
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return conf


def config_fingerprint(cfg: DictConfig) -> str:
    """A short hash of :func:`fingerprinted_config`: equal for two runs that compute the same thing."""
    blob = json.dumps(fingerprinted_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _different_config(what: Path, phase: str, detail: str = "") -> ConfigError:
    return ConfigError(f"{what} holds a {phase} phase of a different config{detail}. Rerunning in the same "
                       "run directory only resumes the same config: use a new hydra.run.dir, or resume=false "
                       "to recompute (and overwrite) this one.")


def _differing_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differing_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def check_resumable_checkpoint(path: Path, fingerprint: str, phase: str) -> None:
    """Refuse to resume ``path`` when it was written under another config (see :func:`config_fingerprint`)."""
    import torch

    from zsl_lightning.callbacks import CONFIG_HASH_KEY

    # mmap: only the pickled metadata is read, not the tensors
    stored = torch.load(path, map_location="cpu", weights_only=False, mmap=True).get(CONFIG_HASH_KEY)
    if stored is None:
        print(f"[zsl-lightning] {path} has no config fingerprint (an older run); resuming it unchecked",
              file=sys.stderr)
    elif stored != fingerprint:
        raise _different_config(path, phase, f" (fingerprint {stored}, this run {fingerprint})")


def _is_false(value) -> bool:
    return str(value) in ("False", "false", "0")


def fit_phase(cfg: DictConfig, dm, split: str, phase_dir: Path, max_epochs: int, loggers: _Loggers,
              monitors: dict[str, str], eval_epochs: set[int] | None, select_on_test: bool = False,
              best_at: dict[str, int] | None = None, fingerprint: str | None = None):
    """Train one phase on ``split`` and return the fitted module (its ``history`` holds the evaluations).

    ``best_at``: task -> epoch whose model ``checkpoints/best_<task>.ckpt`` holds (the epochs selected on
    validation, or the last one); ``None``: the best evaluation of the phase (see :class:`ZSLCheckpoint`).
    It is also handed to the module as ``selected_epochs`` for callbacks that show the selected model
    (e.g. the Fig. 4 feature plot).
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from zsl_lightning.callbacks import AtomicCheckpointIO, ZSLCheckpoint
    from zsl_lightning.context import PhaseContext
    from zsl_lightning.data.samplers import RandomBatches

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    context = PhaseContext(phase=split, split=dm.split(split), on_device=dm.device_split,
                           tasks=tuple(getattr(dm, "tasks", ("zsl", "gzsl"))),
                           eval_epochs=None if eval_epochs is None else frozenset(eval_epochs),
                           selected_epochs=dict(best_at or {}), select_on_test=select_on_test,
                           train_prefix="dev/train" if split == "dev" else "train")
    module = build_method(cfg, context)
    dm.use(split, getattr(module, "batch_plan", None) or RandomBatches(64))

    ckpt = ZSLCheckpoint(phase_dir / "checkpoints", monitors, epochs=best_at, config_hash=fingerprint)
    callbacks = [ckpt]
    for _, cb in (cfg.get("callbacks") or {}).items():
        if cb is not None and "_target_" in cb:
            callbacks.append(instantiate(cb))
    if not cfg.trainer.get("enable_progress_bar", True):  # trainer.enable_progress_bar=false wins
        from pytorch_lightning.callbacks.progress import ProgressBar

        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer = instantiate(cfg.trainer, max_epochs=int(max_epochs), callbacks=callbacks,
                          logger=loggers.for_phase("dev" if split == "dev" else "test") or False,
                          plugins=[AtomicCheckpointIO()], enable_checkpointing=True,
                          default_root_dir=str(phase_dir), _convert_="partial")
    ckpt_path = None
    if split == "test" and cfg.get("ckpt_path"):
        ckpt_path = str(cfg.ckpt_path)
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path '{ckpt_path}' does not exist.")
    elif not _is_false(cfg.get("resume", "auto")) and ckpt.last_path.is_file():
        if fingerprint is not None:
            check_resumable_checkpoint(ckpt.last_path, fingerprint, split)
        ckpt_path = str(ckpt.last_path)
        print(f"[zsl-lightning] resuming the {split} phase from {ckpt_path}", file=sys.stderr)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    if trainer.interrupted:
        raise KeyboardInterrupt
    return module


# ---------------------------------------------------------------------------------------- the run
def run(cfg: DictConfig) -> dict:
    """Run one job; returns the results dict (also written to ``<output_dir>/results.json``)."""
    from zsl_lightning.eval.results import print_results
    from zsl_lightning.eval.selection import SELECT_MODES, best_epochs, describe_selection, task_metrics

    configure_environment(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    select = str(cfg.eval.select)
    if select not in SELECT_MODES:
        raise ConfigError(f"eval.select must be one of {SELECT_MODES}, got '{select}'.")
    metric = cfg.get("optimized_metric")
    if metric and not str(metric).startswith("val/"):
        raise ConfigError(f"optimized_metric must be a validation metric (val/...), got '{metric}': "
                          "a sweep may never optimise a test-set number.")
    dev_only = bool(cfg.eval.get("dev_only", False))
    if dev_only and select != "val":
        raise ConfigError("eval.dev_only=true needs eval.select=val (a sweep may only look at validation data).")

    check_mandatory_values(cfg)
    dm = build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    fingerprint = config_fingerprint(cfg)
    atomic_write_text(out / "config_resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved_config(cfg))))
    if cfg.get("print_config", True):
        from zsl_lightning.utils.rich_utils import print_config_tree

        print_config_tree(cfg)

    tasks = getattr(dm, "tasks", ("zsl", "gzsl"))
    monitors = monitors_for(cfg, dm.label_mode, tasks)
    epochs = int(cfg.method.epochs)
    loggers = _Loggers(cfg)
    results: dict[str, Any] = {
        "method": _choice("method", cfg),
        "data": dm.info["name"],
        "seed": int(cfg.seed),
        "selection": {"mode": select, "description": describe_selection(select, tasks), "monitors": monitors},
        "config": "config_resolved.yaml",
    }
    if _hydra_choice("variant"):
        results["variant"] = _hydra_choice("variant")
    try:
        if select == "val":
            dev_dir = out / "dev"
            sel_file = dev_dir / "selection.json"
            if sel_file.is_file() and not _is_false(cfg.get("resume", "auto")):
                dev_state = json.loads(sel_file.read_text())
                _check_selection_config(sel_file, dev_state, fingerprint, fingerprinted_config(cfg))
                print(f"[zsl-lightning] dev phase already finished ({sel_file}); not repeating it", file=sys.stderr)
            else:
                dev = fit_phase(cfg, dm, "dev", dev_dir, epochs, loggers, monitors, None, fingerprint=fingerprint)
                chosen = best_epochs(dev.history, monitors)
                if set(chosen) != set(monitors):
                    raise ZSLError(f"validation never produced {sorted(monitors.values())}; nothing to select.")
                dev_state = {"epochs": chosen, "history": dev.history, "config_hash": fingerprint,
                             "config": fingerprinted_config(cfg)}
                if _is_rank_zero():
                    atomic_write_json(sel_file, dev_state)
            chosen = {k: int(v) for k, v in dev_state["epochs"].items()}
            by_epoch = {h["epoch"]: h for h in dev_state["history"]}
            results["selection"]["epochs"] = chosen
            results["validation"] = {k: v for t, e in chosen.items() for k, v in task_metrics(by_epoch[e], t).items()}
            results["history"] = {"dev": dev_state["history"]}
            results["objective"] = {t: by_epoch[e][monitors[t]] for t, e in chosen.items()}
            if dev_only:
                results["headline"] = {}
                if _is_rank_zero():
                    atomic_write_json(out / "results.json", results)
                return results
            final = fit_phase(cfg, dm, "test", out, max(chosen.values()), loggers, monitors, set(chosen.values()),
                              best_at=chosen, fingerprint=fingerprint)
        elif select == "last":
            chosen = {t: epochs for t in monitors}
            final = fit_phase(cfg, dm, "test", out, epochs, loggers, monitors, {epochs}, best_at=chosen,
                              fingerprint=fingerprint)
        else:  # test_best: the papers' protocol, labelled everywhere
            final = fit_phase(cfg, dm, "test", out, epochs, loggers, monitors, None, select_on_test=True,
                              fingerprint=fingerprint)
            chosen = best_epochs(final.history, monitors)
        results["selection"]["epochs"] = chosen
        by_epoch = {h["epoch"]: h for h in final.history}
        missing = [t for t, e in chosen.items() if e not in by_epoch]
        if missing:
            raise ZSLError(f"no test evaluation at the selected epoch(s) for {missing}; the checkpoint may be from "
                           "a different run (delete its checkpoints/ or set resume=false).")
        results["headline"] = {k: v for t, e in chosen.items() for k, v in task_metrics(by_epoch[e], t).items()}
        results.setdefault("history", {})["test"] = final.history
        results["checkpoints"] = checkpoint_record(out, chosen, select)
        if _is_rank_zero():  # under DDP every rank evaluates identically; one writes and prints
            atomic_write_json(out / "results.json", results)
            print_results(results)
        return results
    finally:
        loggers.finish(results if "headline" in results else None)


CHECKPOINT_SELECTED_ON = {
    "val": "validation (the epoch selected in the dev phase)",
    "last": "last epoch (no selection)",
    "test_best": "TEST-SET SELECTION (best test evaluation; the papers' protocol, optimistic)",
}


def checkpoint_record(out: Path, chosen: dict[str, int], select: str) -> dict[str, dict]:
    """``results.json["checkpoints"]``: each checkpoint's path, the epoch it holds (read from the file)
    and, for ``best_<task>``, how that epoch was chosen."""
    import torch

    rec = {}
    for name in ["last", *(f"best_{t}" for t in chosen)]:
        path = out / "checkpoints" / f"{name}.ckpt"
        epoch = None
        if path.is_file():
            # Lightning stores the 0-based epoch that had just ended; the history counts from 1
            epoch = int(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["epoch"]) + 1
        rec[name] = {"path": str(path.relative_to(out)), "epoch": epoch}
        if name != "last":
            rec[name]["selected_on"] = CHECKPOINT_SELECTED_ON[select]
    return rec


def _check_selection_config(sel_file: Path, dev_state: dict, fingerprint: str, conf: dict) -> None:
    stored = dev_state.get("config_hash")
    if stored is None:
        print(f"[zsl-lightning] {sel_file} has no config fingerprint (an older run); reusing it unchecked",
              file=sys.stderr)
    elif stored != fingerprint:
        keys = _differing_keys(dev_state.get("config") or {}, conf)
        detail = f" (differs in: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''})" if keys else ""
        raise _different_config(sel_file.parent, "dev", detail)


def _is_rank_zero() -> bool:
    from pytorch_lightning.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _hydra_choice(group: str) -> str | None:
    """The option chosen for a config group (``method=clswgan`` → ``clswgan``), when run under Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get(group)
        return None if choice in (None, "null", "None") else str(choice)
    except Exception:  # not under Hydra
        return None


def _choice(group: str, cfg: DictConfig) -> str:
    return _hydra_choice(group) or str(cfg[group].get("_target_", group)).rsplit(".", 1)[-1].lower()


def objective(cfg: DictConfig, results: dict) -> float | None:
    """The value an Optuna sweep optimises: a *validation* metric (``optimized_metric``, e.g. ``val/gzsl_H``)."""
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    metric = str(metric)
    if not metric.startswith("val/"):
        raise ConfigError(f"optimized_metric must be a validation metric (val/...), got '{metric}'.")
    key = metric[len("val/"):]
    if key not in results.get("validation", {}):
        raise ConfigError(f"optimized_metric '{metric}' is not among {sorted(results.get('validation', {}))}.")
    return float(results["validation"][key])


def main_entry(cfg: DictConfig) -> float | None:
    """Entry point used by ``train.py``: user errors become one message and exit code 2, no traceback."""
    from omegaconf.errors import MissingMandatoryValue

    try:
        try:
            results = run(cfg)
            return objective(cfg, results)
        except MissingMandatoryValue as e:  # a ??? reached through an interpolation: still the user's config
            raise missing_value_error([e.full_key or str(e)]) from None
    except ZSLError as e:
        _print_error(e)
        sys.exit(e.exit_code)


def _print_error(e: ZSLError) -> None:
    try:
        from rich.console import Console
        from rich.text import Text

        console = Console(stderr=True)
        console.print(f"[bold red]{type(e).__name__}[/bold red]")
        console.print(Text(str(e)), soft_wrap=True)  # no hard wraps: paths and URLs stay copyable
    except ImportError:  # pragma: no cover
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
