"""What a generator is conditioned on, in both label modes: one small object instead of ``a = emb[y]``.

* single-label: the class embedding ``a`` of each row (``G(z, a)``, ``D(x, a)``, ``E(x, a)``);
* multi-label (Gupta et al. 2021): a multi-hot label set ``y`` over an embedding table ``E``. The generator
  sees the whole set (``G(z, y, E)``: ALF takes the mean embedding, FLF each label's embedding, CLF both),
  critics and encoders the mean label embedding ``e_µ`` (Eq. 1).

A method builds conditions with :func:`condition_on` (training targets of a split), :func:`labels_condition`
(label sets to synthesise) or ``Condition(a)`` (class embeddings to synthesise), and calls networks through
:meth:`~zsl_lightning.methods.generative.GenerativeZSLMethod.generate` and ``Condition.vector``.
"""

from __future__ import annotations

import torch

from zsl_lightning.nn.fusion import mean_label_embedding


class Condition:
    """The conditioning of a batch of rows.

    ``vector`` (B × d) is what critics and encoders see: ``a`` (single-label) or ``e_µ`` (multi-label, Gupta
    et al. Eq. 1, computed on first use). ``labels`` (B × L float multi-hot) and ``table`` (L × d) are set in
    multi-label mode; the generator is then called ``G(z, labels, table)``, else ``G(z, vector)``.
    """

    __slots__ = ("_vector", "labels", "table")

    def __init__(self, vector: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                 table: torch.Tensor | None = None):
        if vector is None and labels is None:
            raise ValueError("a Condition needs a vector or a label set")
        self._vector, self.labels, self.table = vector, labels, table

    @property
    def vector(self) -> torch.Tensor:
        if self._vector is None:
            self._vector = mean_label_embedding(self.labels, self.table)
        return self._vector

    def generator_inputs(self) -> tuple[torch.Tensor, ...]:
        return (self.vector,) if self.labels is None else (self.labels, self.table)

    def __len__(self) -> int:
        return len(self.labels if self.labels is not None else self._vector)


def as_condition(cond: Condition | torch.Tensor) -> Condition:
    """A :class:`Condition`; a bare tensor is a single-label class-embedding batch ``a``."""
    return cond if isinstance(cond, Condition) else Condition(cond)


def condition_on(split, target: torch.Tensor) -> Condition:
    """The condition of training rows with targets ``target`` (the batch contract's ``target``): class ids
    (single-label) or a ±1/0 label matrix over ``split.train_cols`` (multi-label; positives only)."""
    if split.label_mode == "single":
        return Condition(split.class_embeddings[target])
    return Condition(labels=(target > 0).float(), table=split.class_embeddings[split.train_cols])


def labels_condition(split, sets: torch.Tensor) -> Condition:
    """Multi-label: one row per label set (bool/float multi-hot rows over the split's global label ids)."""
    return Condition(labels=sets.float(), table=split.class_embeddings)
