"""One multi-label train/evaluate problem (:class:`MultiLabelSplit`) and the reads methods make of it.

Splits (see ``docs/methods/multilabel.md``):

``test``  train on the training file's images with 1..``max_positives`` positives over the seen labels;
          ZSL on the ZSL test file (unseen columns), GZSL on the GZSL test file (all columns).
``dev``   the last ``val_image_fraction`` of the training file's rows are validation images, and a seeded
          ``val_label_fraction`` of the SEEN labels act as pseudo-unseen labels: their columns are hidden
          from dev training (images are filtered on the remaining columns). Validation ZSL scores the
          pseudo-unseen columns of the validation images, GZSL all seen columns. No test file is read.

Methods read the training rows only through :meth:`MultiLabelSplit.train_chunks`,
:meth:`~MultiLabelSplit.sample_train_rows` and :meth:`~MultiLabelSplit.train_label_sets`, never a store:
the same calls serve in-memory and streamed files, and features keep their trailing shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from zsl_lightning.data.multilabel_store import RowStore
from zsl_lightning.errors import ConfigError


@dataclass
class MultiLabelSplit:
    """One multi-label train/evaluate problem. Label ids are global: seen labels 0..S-1, unseen S..S+U-1.

    ``train`` holds the training images (labels over ``train_cols``); ``eval_zsl`` / ``eval_gzsl`` the
    evaluation images with labels over ``eval_zsl_cols`` (the split's unseen labels) and
    ``eval_gzsl_cols`` (seen + unseen labels).
    """

    name: str
    class_embeddings: torch.Tensor
    seen_classes: torch.Tensor
    unseen_classes: torch.Tensor
    train: RowStore
    train_cols: torch.Tensor
    eval_zsl: RowStore
    eval_zsl_cols: torch.Tensor
    eval_gzsl: RowStore
    eval_gzsl_cols: torch.Tensor
    top_k: tuple[int, ...] = (3, 5)
    class_names: list[str] = field(default_factory=list)
    chunk_rows: int = 8192
    buffer_rows: int = 65536
    eval_scores_dtype: str = "float32"
    label_mode: str = "multi"
    mode: str = "zsl"

    @property
    def eval_tasks(self) -> tuple[tuple[str, str, RowStore, torch.Tensor], ...]:
        """``(task, classifier kind, images, label columns)`` of every evaluation. ``zsl`` mode: ZSL (the
        ``zsl`` classifier over the unseen labels) and GZSL (the ``gzsl`` classifier over all labels).
        ``standard`` mode: one task ``std`` (metrics ``std_*``) — the classifier over every label of the split,
        i.e. the ``gzsl`` kind, with every label seen."""
        if self.mode == "standard":
            return (("std", "gzsl", self.eval_gzsl, self.eval_gzsl_cols),)
        return (("zsl", "zsl", self.eval_zsl, self.eval_zsl_cols), ("gzsl", "gzsl", self.eval_gzsl, self.eval_gzsl_cols))

    @property
    def eval_prefix(self) -> str:
        return "val" if self.name == "dev" else "test"

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return self.train.feature_shape

    @property
    def feature_dim(self) -> int:
        return int(np.prod(self.feature_shape))

    @property
    def embedding_dim(self) -> int:
        return int(self.class_embeddings.shape[1])

    @property
    def num_train(self) -> int:
        return len(self.train)

    def to(self, device) -> MultiLabelSplit:
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device) if isinstance(v, (torch.Tensor, RowStore)) else v
        return MultiLabelSplit(**kw)

    # ------------------------------------------------------------------ what methods read of the training rows
    @property
    def num_train_chunks(self) -> int:
        """How many blocks of ``chunk_rows`` training rows :meth:`train_chunks` yields (at least 1)."""
        return self.train.num_chunks(self.chunk_rows)

    def train_chunks(self, order=None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(features (n, *feature_shape) float32, labels (n, len(train_cols)) int8 +1/-1/0)`` blocks of the
        training rows, block ``j`` holding rows ``j·chunk_rows ..``; in the order ``order`` (block ids, e.g.
        ``torch.randperm(split.num_train_chunks, generator=g)``), else in row order. On the CPU when streamed,
        on the split's device when in memory."""
        return self.train.chunks(self.chunk_rows, None if order is None else np.asarray(order))

    def sample_train_rows(self, cap: int | None, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Real training rows ``(x, labels int8)``: all of them when in memory and at most ``cap``; otherwise
        the first ``cap`` rows of whole chunks taken in the order ``randperm(num_train_chunks, generator)``
        (memory stays bounded when streamed). ``cap`` is ``method.gzsl_real_rows``; ``generator`` is used
        only when rows are sampled."""
        store = self.train
        if store.in_memory and (cap is None or len(store) <= cap):
            return store.x, store.y
        if cap is None:
            raise ConfigError("method.gzsl_real_rows must be set when the training file is streamed "
                              "(data.in_memory=false or a file above data.memory_limit_gb).")
        order = torch.randperm(self.num_train_chunks, generator=generator).numpy()
        cap = min(int(cap), len(store))
        x = y = None
        n = 0
        for xc, yc in self.train_chunks(order):  # filled in place: the rows exist once, never a list + cat
            if x is None:
                x = torch.empty(cap, *xc.shape[1:], dtype=xc.dtype, device=xc.device)
                y = torch.empty(cap, *yc.shape[1:], dtype=yc.dtype, device=yc.device)
            m = min(len(xc), cap - n)
            x[n : n + m], y[n : n + m] = xc[:m], yc[:m]
            n += m
            if n >= cap:
                break
        return x, y

    def train_label_sets(self, max_rows: int | None = None, seed: int = 0) -> torch.Tensor:
        """Positive label sets of the training images as a bool matrix over ``train_cols`` (CPU).

        With ``max_rows``, a seeded subset of ``max_rows`` images (rows ``randperm(N)[:max_rows]``, in that
        order) is chosen before reading, and the labels are streamed chunk by chunk keeping only those rows:
        memory is ``max_rows × S`` bools plus one chunk, never the whole label matrix.
        """
        n = len(self.train)
        if max_rows is None or n <= max_rows:
            if self.train.in_memory:
                return self.train.y.cpu() > 0
            return torch.cat([y > 0 for _, y in self.train.chunks(self.chunk_rows, labels_only=True)])
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(n, generator=g)[: int(max_rows)]
        if self.train.in_memory:
            return self.train.y[pick.to(self.train.y.device)].cpu() > 0
        sorted_pick, where = pick.sort()
        kept, cr = [], self.chunk_rows
        bounds = torch.searchsorted(sorted_pick, torch.arange(0, self.num_train_chunks + 1) * cr)
        for j in range(self.num_train_chunks):
            lo, hi = int(bounds[j]), int(bounds[j + 1])
            if hi > lo:  # chunks without a chosen row are not read
                _, y = self.train.read_chunk(j, cr, labels_only=True)
                kept.append(y[sorted_pick[lo:hi] - j * cr] > 0)
        out = torch.cat(kept)  # rows in increasing position; put them back in the order of ``pick``
        inverse = torch.empty_like(where)
        inverse[where] = torch.arange(len(where))
        return out[inverse]
