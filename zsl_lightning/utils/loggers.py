"""The loggers of a run: one W&B run shared by every phase, one version of each file logger per phase."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from zsl_lightning.utils.rundir import resolved_config


class Loggers:
    """Loggers of a job: file loggers get one version per phase; a W&B run is shared by all phases."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.shared: dict[str, Any] = {}

    def for_phase(self, phase: str, keep_before_epoch: int | None = None) -> list:
        """The phase's loggers; ``keep_before_epoch`` (a resumed phase): the CSV logger keeps the rows of the
        epochs before it and appends (:class:`~zsl_lightning.utils.csv_logger.ResumableCSVLogger`)."""
        from hydra.utils import instantiate

        out = []
        for key, lcfg in (self.cfg.get("logger") or {}).items():
            if lcfg is None or "_target_" not in lcfg:
                continue
            if "Wandb" in str(lcfg._target_):
                if key not in self.shared:
                    extra = {}
                    if lcfg.get("group") in (None, ""):
                        extra["group"] = multirun_group()
                    self.shared[key] = instantiate(lcfg, **extra)
                    self.shared[key].log_hyperparams(flat_config(self.cfg))
                out.append(self.shared[key])
            elif str(lcfg._target_).endswith("CSVLogger"):
                out.append(instantiate(lcfg, version=phase, keep_before_epoch=keep_before_epoch,
                                       _target_="zsl_lightning.utils.csv_logger.ResumableCSVLogger"))
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


def wandb_credentials() -> bool:
    """Whether W&B can log in (an API key in the environment or api.wandb.ai in the netrc file)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def multirun_group() -> str | None:
    """The W&B group of the jobs of one Hydra multirun (``<job name>-<sweep dir name>``); ``None`` otherwise."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return f"{hc.job.name}-{Path(hc.sweep.dir).name}"
    except Exception:  # not under Hydra (tests, notebooks)
        pass
    return None


def flat_config(cfg: DictConfig) -> dict:
    """The resolved config as one level of dotted keys (W&B hyperparameters)."""
    out = {}

    def walk(prefix, node):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = node

    walk("", resolved_config(cfg))
    return out
