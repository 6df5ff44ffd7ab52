"""Callbacks and runners the reliability tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[2]
FAST = ["debug=fast", "trainer.enable_progress_bar=false", "method.generator.hidden=[32]",
        "method.discriminator.hidden=[32]"]


class BlowUpAtEpoch(pl.Callback):
    """Sets every optimizer's learning rate to ``lr`` from (0-based) ``epoch`` on: a run that diverges late."""

    def __init__(self, epoch: int, lr: float = 1e30):
        self.epoch, self.lr = epoch, lr

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch >= self.epoch:
            for opt in trainer.optimizers:
                for g in opt.param_groups:
                    g["lr"] = self.lr


def train(args, cwd: Path, cache_dir: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python train.py *args`` as a user types it."""
    env = dict(os.environ, ZSL_CACHE_DIR=str(cache_dir), WANDB_MODE="offline", HYDRA_FULL_ERROR="0",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
