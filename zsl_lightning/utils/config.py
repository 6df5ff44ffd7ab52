"""Reading the composed config: instantiation that lets user errors through, checks that run before anything
is built (mandatory ``???`` values, run options), and the options chosen on the command line."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from zsl_lightning.errors import ConfigError, ZSLError


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
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        full = f"{prefix}{key}" if isinstance(node, DictConfig) else f"{prefix[:-1]}[{key}]"
        if OmegaConf.is_missing(node, key):
            yield full
            continue
        child = node._get_node(key)
        if OmegaConf.is_config(child) and not OmegaConf.is_interpolation(node, key) and not child._is_none():
            yield from _literal_missing_keys(child, full + ".")


def check_run_options(cfg: DictConfig) -> None:
    """``eval.select``, ``optimized_metric`` and ``eval.dev_only`` agree: a sweep only sees validation data."""
    from zsl_lightning.eval.selection import SELECT_MODES

    select = str(cfg.eval.select)
    if select not in SELECT_MODES:
        raise ConfigError(f"eval.select must be one of {SELECT_MODES}, got '{select}'.")
    metric = cfg.get("optimized_metric")
    if metric and not str(metric).startswith("val/"):
        raise ConfigError(f"optimized_metric must be a validation metric (val/...), got '{metric}': "
                          "a sweep may never optimise a test-set number.")
    if bool(cfg.eval.get("dev_only", False)) and select != "val":
        raise ConfigError("eval.dev_only=true needs eval.select=val (a sweep may only look at validation data).")


def hydra_choice(group: str) -> str | None:
    """The option chosen for a config group (``method=clswgan`` → ``clswgan``), when run under Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get(group)
        return None if choice in (None, "null", "None") else str(choice)
    except Exception:  # not under Hydra
        return None


def choice_name(group: str, cfg: DictConfig) -> str:
    """:func:`hydra_choice`, or the lower-cased class name of the group's ``_target_`` outside Hydra."""
    return hydra_choice(group) or str(cfg[group].get("_target_", group)).rsplit(".", 1)[-1].lower()


#: Trainer arguments the pipeline sets itself, and where the user sets them instead
PIPELINE_TRAINER_KEYS = {
    "callbacks": "the callbacks config group (callbacks=..., +callbacks.<name>._target_=...)",
    "logger": "the logger config group (logger=csv | tensorboard | wandb | many | none)",
    "plugins": "nothing: checkpoints are always written atomically by the pipeline",
    "enable_checkpointing": "nothing: checkpoints/last.ckpt and best_<task>.ckpt are always written",
    "default_root_dir": "hydra.run.dir (the run directory)",
}
#: Trainer arguments manual optimization forbids: (value that means "off", what to use instead)
MANUAL_OPTIMIZATION_KEYS = {
    "gradient_clip_val": ((None, 0, 0.0), "method.grad_clip"),
    "accumulate_grad_batches": ((None, 1), "a larger batch (method.sampler.batch_size)"),
}


def reconcile_trainer(cfg: DictConfig) -> None:
    """The Trainer keys the pipeline overrides: ``trainer.max_epochs=N`` is honoured — it sets ``method.epochs``
    exactly as ``method.epochs=N`` would (each phase's epochs derive from it) — and the others are refused with
    the key to use instead."""
    from omegaconf import open_dict

    tr = cfg.get("trainer")
    if tr is None:
        return
    owned = [k for k in PIPELINE_TRAINER_KEYS if k in tr and tr.get(k) is not None]
    if owned:
        k = owned[0]
        raise ConfigError(f"trainer.{k} is set by the pipeline and cannot be overridden; use "
                          f"{PIPELINE_TRAINER_KEYS[k]}.")
    for k, (off, instead) in MANUAL_OPTIMIZATION_KEYS.items():
        if k in tr and tr.get(k) not in off:
            raise ConfigError(f"trainer.{k}={tr.get(k)}: methods use manual optimization, which the Trainer's {k} "
                              f"does not support; use {instead}.")
    if "max_epochs" not in tr or OmegaConf.is_interpolation(tr, "max_epochs"):
        return
    value = tr.get("max_epochs")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"trainer.max_epochs must be a positive integer (it sets method.epochs), got {value!r}.")
    explicit = [o for o in hydra_overrides() if o.split("=", 1)[0].lstrip("+~") == "method.epochs"]
    if explicit and int(cfg.method.get("epochs", value)) != value:
        raise ConfigError(f"trainer.max_epochs={value} and method.epochs={cfg.method.epochs} disagree; set only "
                          "method.epochs (the pipeline derives every phase's Trainer epochs from it).")
    with open_dict(cfg):
        cfg.method.epochs = value
        cfg.trainer.max_epochs = "${method.epochs}"  # the config (and its fingerprint) of method.epochs=N


def hydra_overrides() -> list[str]:
    """The command-line overrides of this job (empty outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return [str(o) for o in HydraConfig.get().overrides.task]
    except Exception:  # not under Hydra
        return []
