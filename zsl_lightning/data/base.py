"""Base datamodule shared by every benchmark.

A datamodule reads and validates its files once (:meth:`ZSLDataModule.load`), exposes what method
configs interpolate (``info``: feature/embedding dims, class counts, label mode), and builds the two
splits of :mod:`zsl_lightning.data.split` (``dev`` for model selection, ``test`` for the final
numbers). Training batches come from :mod:`.loaders` (index plans of :mod:`.samplers`, gathered on the device).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from zsl_lightning.data.loaders import DeviceBatchLoader
from zsl_lightning.data.samplers import BatchPlan, RandomBatches, epoch_seed
from zsl_lightning.errors import ConfigError

__all__ = ["SPLITS", "ZSLDataModule", "epoch_seed"]  # epoch_seed: methods still import it from here

SPLITS = ("dev", "test")


class ZSLDataModule(pl.LightningDataModule):
    """Common machinery: lazy loading, split cache, device copies and the batch plan."""

    label_mode = "single"

    def __init__(self, name: str, seed: int = 0):
        super().__init__()
        self.name = name
        self.seed = int(seed)
        self._loaded = False
        #: things about the data a user should know (printed at load, written to results.json "notes")
        self.notices: list[str] = []
        self._splits: dict[str, Any] = {}
        self._device_split: tuple[str, Any, Any] | None = None
        self.active_split = "test"
        self.plan: BatchPlan = RandomBatches(64)

    # -- to implement -------------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _build_split(self, name: str):
        raise NotImplementedError

    @property
    def info(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def load(self) -> ZSLDataModule:
        if not self._loaded:
            self._load()
            self._loaded = True
        return self

    def split(self, name: str):
        if name not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got '{name}'.")
        self.load()
        if name not in self._splits:
            self._splits[name] = self._build_split(name)
        return self._splits[name]

    def use(self, split: str, plan: BatchPlan | None = None) -> None:
        """Select the split trained on by the next ``fit`` and the batch plan of the method."""
        self.split(split)
        self.active_split = split
        if plan is not None:
            self.plan = plan
        self._device_split = None

    def device_split(self, device: torch.device | str):
        """The active split on ``device`` (copied once, then cached)."""
        device = torch.device(device)
        if self._device_split is None or self._device_split[0] != self.active_split or self._device_split[1] != device:
            self._device_split = (self.active_split, device, self.split(self.active_split).to(device))
        return self._device_split[2]

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def _device(self) -> torch.device:
        if self.trainer is not None:
            return self.trainer.strategy.root_device
        return torch.device("cpu")

    def train_dataloader(self):
        rank = self.trainer.global_rank if self.trainer is not None else 0
        split = self.device_split(self._device())
        return DeviceBatchLoader(split, self.plan, self.seed, self._current_epoch, rank)

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0
