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
