"""The process around a run: W&B mode, log filters, matmul precision, which rank writes files."""

from __future__ import annotations

import logging
import os
import warnings

from omegaconf import DictConfig

from zsl_lightning.utils.loggers import wandb_credentials


def configure_environment(cfg: DictConfig) -> None:
    """W&B runs offline unless credentials exist; tests and CI never need a network."""
    if "WANDB_MODE" not in os.environ and not wandb_credentials():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    pl_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertising) for f in pl_log.filters):
        pl_log.addFilter(_DropAdvertising())

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


def is_rank_zero() -> bool:
    """Under DDP every rank evaluates identically; rank 0 alone writes and prints."""
    from pytorch_lightning.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0
