"""Checkpointing that never leaves a half-written file, and the checkpoints a ZSL run needs.

* ``last.ckpt`` after every epoch (model, every optimizer and scheduler, loop counters, evaluation
  history) — resuming from it continues exactly (see ``tests/test_resume.py``);
* never a model with a non-finite weight (a diverged run keeps its last good checkpoints);
* ``best_zsl.ckpt`` / ``best_gzsl.ckpt``, the model each task reports:

  - with ``epochs`` given (test phase of ``eval.select=val``: the epochs selected on validation;
    ``eval.select=last``: the last epoch), exactly at ``epochs[task]`` — never chosen by a test metric,
    even though the test phase also evaluates at the *other* task's selected epoch;
  - without (the dev phase, where the evaluations are on validation data, and ``eval.select=test_best``,
    the papers' test-set protocol, labelled as such in ``results.json``), at the evaluation that
    maximises ``monitors[task]`` so far (earliest on ties, as :func:`~zsl_lightning.eval.selection.best_epochs`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint

from zsl_lightning.eval.selection import best_epochs
from zsl_lightning.methods.divergence import all_finite
from zsl_lightning.utils.io import atomic_torch_save, user_file_mode

CONFIG_HASH_KEY = "zsl_config_hash"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the target directory, fsync, then ``os.replace``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_torch_save(checkpoint, path)


def atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, user_file_mode())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ZSLCheckpoint(Checkpoint):
    """Saves ``last.ckpt`` every epoch and ``best_<task>.ckpt`` at the epoch each task reports.

    Args:
        dirpath: the ``checkpoints/`` directory.
        monitors: task -> metric key of the module's ``history`` (``{"zsl": "zsl_t1", "gzsl": "gzsl_H"}``).
        epochs: task -> the (1-based) epoch whose model ``best_<task>.ckpt`` must hold, when it is fixed
            in advance (``eval.select=val`` test phase, ``eval.select=last``). ``None``: track the maximum
            of ``monitors[task]`` over the evaluations.
        config_hash: stored in every checkpoint under ``CONFIG_HASH_KEY`` (see
            :func:`zsl_lightning.utils.rundir.config_fingerprint`).

    It is a :class:`~pytorch_lightning.callbacks.Checkpoint`, so Lightning runs it after the module's
    ``on_train_epoch_end`` (where evaluation happens) and does not add its own ModelCheckpoint.
    """

    def __init__(self, dirpath: str | Path, monitors: dict[str, str] | None = None,
                 epochs: dict[str, int] | None = None, config_hash: str | None = None):
        super().__init__()
        self.dirpath = Path(dirpath)
        self.monitors = dict(monitors or {})
        self.epochs = None if epochs is None else {str(t): int(e) for t, e in epochs.items()}
        self.config_hash = config_hash

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        # lets a rerun in the same run directory refuse to resume a checkpoint of another config
        if self.config_hash is not None:
            checkpoint[CONFIG_HASH_KEY] = self.config_hash

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def best_path(self, task: str) -> Path:
        return self.dirpath / f"best_{task}.ckpt"

    def tasks_to_save(self, history: list[dict], epoch: int) -> list[str]:
        """The tasks whose ``best_<task>.ckpt`` is the model after ``epoch``."""
        if self.epochs is not None:
            return [t for t, e in self.epochs.items() if e == epoch]
        if not history or history[-1].get("epoch") != epoch:
            return []
        best = best_epochs(history, self.monitors)
        return [t for t in self.monitors if best.get(t) == epoch]

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if not all_finite(pl_module):  # method.divergence=warn trains on; the last good checkpoints stay
            print(f"[zsl-lightning] warning: epoch {trainer.current_epoch + 1} has non-finite weights; not "
                  f"checkpointed (the last good checkpoints in {self.dirpath} are kept).", file=sys.stderr)
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        tasks = self.tasks_to_save(list(getattr(pl_module, "history", [])), trainer.current_epoch + 1)
        # best_<task>.ckpt is written before last.ckpt: a run dying in between resumes from the previous
        # last.ckpt, replays this epoch exactly and writes both again
        target = self.best_path(tasks[0]) if tasks else self.last_path
        trainer.save_checkpoint(target, weights_only=False)
        if not trainer.is_global_zero:
            return
        for task in tasks[1:]:
            atomic_copy(target, self.best_path(task))
        if tasks:
            atomic_copy(target, self.last_path)
