"""Multi-label datamodules: a few lines around a benchmark of :mod:`.multilabel_benchmark`.

``data.mode`` picks the class: ``zsl`` (Tables 1-3) is :class:`MultiLabelDataModule`, ``standard`` (Table 4)
:class:`StandardMultiLabelDataModule`. A config naming a datamodule class with ``mode: standard`` gets that
class's ``standard_class`` (its own attribute, not an inherited one), so ``data=nuswide data.mode=standard``
and ``data=synthetic_maps data.mode=standard`` work alike. Every option is the benchmark's
(:class:`~zsl_lightning.data.multilabel_benchmark.MultiLabelBenchmark`: ``root``, ``files``, ``preprocess``,
``in_memory``, ``eval_scores_dtype``, ...).
"""

from __future__ import annotations

from typing import Any

from zsl_lightning.data.base import ZSLDataModule
from zsl_lightning.data.loaders import MultiLabelBatchLoader
from zsl_lightning.data.multilabel_benchmark import MultiLabelBenchmark, StandardMultiLabelBenchmark
from zsl_lightning.errors import ConfigError

MODES = ("zsl", "standard")


class MultiLabelDataModule(ZSLDataModule):
    """``data.mode=zsl``: ZSL and GZSL splits of a multi-label benchmark (metrics ``zsl_*``, ``gzsl_*``).
    ``standard_class``: the subclass ``data.mode=standard`` builds (set below each pair of classes)."""

    label_mode = "multi"
    mode = "zsl"
    tasks = ("zsl", "gzsl")  # the evaluation tasks, i.e. the metric prefixes
    benchmark_class = MultiLabelBenchmark

    def __new__(cls, *args, mode: str = "zsl", **kwargs):
        if mode not in MODES:
            raise ConfigError(f"data.mode must be zsl (Tables 1-3) | standard (Table 4), got '{mode}'.")
        if mode == "standard" and cls.mode != "standard":
            standard = cls.__dict__.get("standard_class")  # not inherited: a subclass names its own
            if standard is None:
                raise ConfigError(f"data.mode=standard is not available for {cls.__name__}.")
            cls = standard
        return super().__new__(cls)

    def __init__(self, root: str, name: str = "NUS-WIDE", mode: str | None = None, seed: int = 0, **options):
        if mode is not None and mode != self.mode:
            raise ConfigError(f"data.mode={mode}: {type(self).__name__} is data.mode={self.mode} only.")
        super().__init__(name=name, seed=seed)
        self.benchmark = self.benchmark_class(root, name=name, seed=seed, **options)

    @property
    def root(self):
        return self.benchmark.root

    def _load(self) -> None:
        self.benchmark.load()

    @property
    def info(self) -> dict[str, Any]:
        self.load()
        return self.benchmark.info

    def _build_split(self, name: str):
        return self.benchmark.build_split(name)

    def train_dataloader(self):
        rank = self.trainer.global_rank if self.trainer is not None else 0
        world = self.trainer.world_size if self.trainer is not None else 1
        split = self.device_split(self._device())
        return MultiLabelBatchLoader(split, self.plan, self.seed, self._current_epoch, rank, self._device(), world)


class StandardMode:
    """Mixin of the ``data.mode=standard`` datamodules (protocol: :mod:`.multilabel_standard`): every label is
    seen; one task, ``std`` (metrics ``std_*``)."""

    mode = "standard"
    tasks = ("std",)


class StandardMultiLabelDataModule(StandardMode, MultiLabelDataModule):
    """``data.mode=standard`` (Gupta et al. Table 4) on feature vectors."""

    benchmark_class = StandardMultiLabelBenchmark


MultiLabelDataModule.standard_class = StandardMultiLabelDataModule
