"""The loggers of a run: one W&B run shared by every phase, one version of each file logger per phase.

What the W&B run holds (names are stable; docs/wandb.md lists them and a workspace to show them):

* config: the resolved config as dotted keys (``method.epochs``, ...) and ``choices/<group>`` (the Hydra
  choices: ``choices/method``, ``choices/data``, ``choices/variant``, ...), which runs are grouped by;
* per epoch, from Lightning: ``dev/train/<loss>`` and ``val/<metric>`` (dev phase), ``train/<loss>`` and
  ``test/<metric>`` (test phase), with ``epoch`` and ``trainer/global_step``;
* at the end (:func:`log_final`): summary ``final/<metric>`` (the headline), ``final/val/<metric>`` (validation
  at the selected epochs), ``final/epoch/<task>``, ``final/selection``, ``final/gzsl_seen_to_unseen`` and
  ``final/gzsl_unseen_to_seen``; tables ``per_class/<task>`` and ``gzsl_confusion``;
* images: what callbacks draw (``plots/...``, :func:`zsl_lightning.callbacks_plots.log_image`) and what phases
  hand to :meth:`Loggers.log_image` (``plots/genotype``).
"""

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
        self.images: list[tuple[str, Path]] = []  # not yet logged: no W&B run existed when they were drawn

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
                    self.shared[key].log_hyperparams({**flat_config(self.cfg), **hydra_choices()})
                    self._flush_images()
                out.append(self.shared[key])
            elif str(lcfg._target_).endswith("CSVLogger"):
                out.append(instantiate(lcfg, version=phase, keep_before_epoch=keep_before_epoch,
                                       _target_="zsl_lightning.utils.csv_logger.ResumableCSVLogger"))
            else:
                out.append(instantiate(lcfg, version=phase))
        return out

    def log_image(self, key: str, path: Path) -> None:
        """Log the picture ``path`` under ``key`` to the run's W&B run: now, or as soon as the run exists."""
        self.images.append((key, Path(path)))
        self._flush_images()

    def _flush_images(self) -> None:
        if not self.shared or not self.images:
            return
        for key, path in self.images:
            for lg in self.shared.values():
                lg.log_image(key=key, images=[str(path)])
        self.images.clear()

    def finish(self, results: dict | None) -> None:
        for lg in self.shared.values():
            try:
                self._flush_images()
                if results:
                    log_final(lg.experiment, results)
            finally:
                import wandb

                wandb.finish()
        self.shared.clear()


def log_final(run, results: dict) -> None:
    """The numbers of the selected epochs (summary ``final/...``) and the per-class and GZSL confusion tables
    of ``results`` (``results.json``) to the W&B run ``run``."""
    import wandb

    from zsl_lightning.eval.per_class import table_rows

    summary = {f"final/{k}": v for k, v in results["headline"].items()}
    summary.update({f"final/val/{k}": v for k, v in (results.get("validation") or {}).items()})
    summary.update({f"final/epoch/{t}": e for t, e in (results["selection"].get("epochs") or {}).items()})
    summary["final/selection"] = results["selection"]["mode"]
    per_class = results.get("per_class") or {}
    tables = {}
    for task, entry in per_class.items():
        rows = [r[1:] for r in table_rows({task: entry})]
        if rows:
            tables[f"per_class/{task}"] = wandb.Table(columns=["group", "class", "name", per_class["metric"], "n"],
                                                      data=[list(r) for r in rows])
    conf = (per_class.get("gzsl") or {}).get("confusion")
    if conf:
        s2u, u2s = conf["seen_to_unseen"], conf["unseen_to_seen"]
        summary["final/gzsl_seen_to_unseen"], summary["final/gzsl_unseen_to_seen"] = s2u, u2s
        if s2u is not None and u2s is not None:
            tables["gzsl_confusion"] = wandb.Table(
                columns=["test images of", "predicted seen (%)", "predicted unseen (%)", "images"],
                data=[["seen classes", 100.0 - s2u, s2u, conf["seen_images"]],
                      ["unseen classes", u2s, 100.0 - u2s, conf["unseen_images"]]])
    if tables:
        run.log(tables)
    run.summary.update(summary)


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


def hydra_choices() -> dict:
    """``choices/<group>``: the config-group choices of the job (method, data, variant, zeronas, preset, ...),
    which the resolved config does not hold as keys; W&B groups runs by them. Empty outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    except Exception:  # not under Hydra (tests, notebooks)
        return {}
    return {f"choices/{k}": v for k, v in choices.items() if not str(k).startswith("hydra/") and v is not None}


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
