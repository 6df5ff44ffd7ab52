"""Checkpointing that never leaves a half-written file, and the checkpoints a ZSL run needs.

* ``last.ckpt`` after every epoch (model, every optimizer and scheduler, loop counters, evaluation
  history) — resuming from it continues exactly (see ``tests/test_resume.py``);
* ``best_zsl.ckpt`` / ``best_gzsl.ckpt`` whenever an evaluation improves the task's monitored metric.
  In the ``test`` phase of ``eval.select=val`` the only evaluations are those at the epochs selected on
  validation, so these are the selected models.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint

from zsl_lightning.utils.io import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the target directory, fsync, then ``os.replace``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_torch_save(checkpoint, path)


def atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ZSLCheckpoint(Checkpoint):
    """Saves ``last.ckpt`` every epoch and ``best_<task>.ckpt`` on improvement of ``monitors[task]``.

    It is a :class:`~pytorch_lightning.callbacks.Checkpoint`, so Lightning runs it after the module's
    ``on_train_epoch_end`` (where evaluation happens) and does not add its own ModelCheckpoint.
    """

    def __init__(self, dirpath: str | Path, monitors: dict[str, str] | None = None):
        super().__init__()
        self.dirpath = Path(dirpath)
        self.monitors = dict(monitors or {})

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(self.last_path, weights_only=False)
        if not trainer.is_global_zero:
            return
        history = getattr(pl_module, "history", [])
        epoch = trainer.current_epoch + 1
        if not history or history[-1].get("epoch") != epoch:
            return
        for task, key in self.monitors.items():
            if key not in history[-1]:
                continue
            earlier = [h[key] for h in history[:-1] if key in h]
            # strictly better than every earlier evaluation: ties keep the earliest, as selection does
            if not earlier or history[-1][key] > max(earlier):
                atomic_copy(self.last_path, self.dirpath / f"best_{task}.ckpt")
