"""Hand-made multirun directories: a job is ``<root>/<n>/`` with .hydra/overrides.yaml, .hydra/hydra.yaml and
(when finished) results.json, as train.py writes them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def make_job(root: Path, num: int, overrides: dict, headline: dict | None, *, seed: int = 0, mode: str = "val",
             experiment: str | None = None, method: str = "jgm", data: str = "synthetic", config: dict | None = None,
             history: dict | None = None) -> Path:
    """One job directory; ``headline=None``: interrupted (no results.json)."""
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    ov = {**({"experiment": experiment} if experiment else {}), **overrides, "seed": seed}
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"{k}={v}" for k, v in ov.items()]))
    choices = {"experiment": experiment, "method": overrides.get("method", method), "data": overrides.get("data", data),
               "variant": overrides.get("variant")}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (job / "config_resolved.yaml").write_text(yaml.safe_dump({"seed": seed, **(config or {})}))
    if headline is not None:
        res = {"status": "ok", "method": choices["method"], "data": choices["data"], "seed": seed,
               "selection": {"mode": mode}, "headline": headline, "history": history or {}}
        (job / "results.json").write_text(json.dumps(res))
    return job


def sweep_config(root, logger):
    """The part of a multirun's config a multirun-end callback reads: the sweep dir, the job name, the loggers."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}, "job": {"name": "train"}}, "logger": logger})


#: (logger config, whether a W&B summary is expected) for the multirun-end callbacks
LOGGER_CASES = [
    ({"wandb": {"_target_": "pytorch_lightning.loggers.WandbLogger", "project": "p"}}, True),
    ({"csv": {"_target_": "pytorch_lightning.loggers.CSVLogger"}}, False),
    (None, False),
]
