"""What a phase hands to the method it trains: one object, passed to the method's constructor.

The pipeline runs a *plan* of named phases (``dev`` → ``test`` for ``eval.select=val``; a method may declare
others, e.g. ZeroNAS's ``search`` → ``derive`` → ``dev`` → ``test``). Each phase builds its method with a
:class:`PhaseContext`; nothing is set on the method from outside after it is built, and the method never
reaches back into the Trainer's datamodule for its data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class PhaseContext:
    """The phase a method is trained in.

    Attributes:
        phase: the phase's name (``dev``, ``test``, ...).
        split: the split trained and evaluated on (CPU copy; :mod:`zsl_lightning.data.split`,
            :mod:`zsl_lightning.data.multilabel_split`). ``None`` only for a method built outside a run (tests).
        on_device: returns the split on a device, cached by the datamodule so that the batch loader and the
            method share one device copy; ``None``: ``split.to(device)``.
        tasks: the evaluation tasks (metric prefixes: ``zsl``, ``gzsl``; ``std`` in standard multi-label mode).
        eval_epochs: the (1-based) epochs to evaluate; ``None`` = every ``eval.every`` epochs and the last one.
        selected_epochs: task → epoch selected for it (on validation, or the last one): callbacks that show the
            selected model (the Fig. 4 feature plot) draw at those epochs.
        select_on_test: the final classifier may keep its best epoch on the evaluated data — only for
            ``eval.select=test_best``, the papers' protocol, labelled as such everywhere.
        train_prefix: metric prefix of training losses (``train`` or ``dev/train``).
        compile: run the networks through ``torch.compile`` (``trainer.compile``; :mod:`zsl_lightning.utils.compile`).
        cuda_graphs: capture them in CUDA graphs on CUDA (``trainer.cuda_graphs``; ignored on a CPU).
    """

    phase: str = "test"
    split: Any = None
    on_device: Callable[[torch.device], Any] | None = None
    tasks: tuple[str, ...] = ("zsl", "gzsl")
    eval_epochs: frozenset[int] | None = None
    selected_epochs: dict[str, int] = field(default_factory=dict)
    select_on_test: bool = False
    train_prefix: str = "train"
    compile: bool = False
    cuda_graphs: bool = False

    def split_on(self, device: torch.device | str):
        """The split on ``device``."""
        if self.on_device is not None:
            return self.on_device(torch.device(device))
        return self.split.to(device)
