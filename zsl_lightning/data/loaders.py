"""Training batch loaders of both label modes, one batch contract.

Every loader yields ``{"x": (k, B, *feature_shape), "target": (k, B, ...), "idx": (k, B)}`` on the training
device: ``k`` batches per step (``n_critic`` for WGAN methods), ``target`` the class ids (single-label,
long) or the label matrix over the split's training columns (multi-label, float +1 / -1 / 0), ``idx`` the
positions of the rows in the split's training set (single-label: in ``train_x``; multi-label: within the
training store's selection of rows, in memory or streamed). Features keep their trailing shape.

The batches of epoch ``e`` come from a generator seeded with ``(seed, e, rank)`` (:func:`epoch_seed`), so
a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import torch

from zsl_lightning.data.samplers import BatchPlan, epoch_seed
from zsl_lightning.errors import ConfigError


class _EpochLoader:
    def __init__(self, plan: BatchPlan, seed: int, epoch_fn, rank: int):
        self.plan, self.seed, self.epoch_fn, self.rank = plan, seed, epoch_fn, rank

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(epoch_seed(self.seed, int(self.epoch_fn()), self.rank))


def gather(x: torch.Tensor, target: torch.Tensor, plan: torch.Tensor, target_dtype: torch.dtype | None = None):
    """The batches of an index plan ``(steps, k, B)``, gathered from tensors on the device."""
    for idx in plan.to(x.device):
        t = target[idx]
        yield {"x": x[idx], "target": t if target_dtype is None else t.to(target_dtype), "idx": idx}


class DeviceBatchLoader(_EpochLoader):
    """Single-label batches gathered on the device from a per-epoch index plan over ``split.train_x``."""

    def __init__(self, split, plan: BatchPlan, seed: int, epoch_fn, rank: int = 0):
        super().__init__(plan, seed, epoch_fn, rank)
        self.split = split
        self._labels_cpu = split.train_y.detach().cpu()

    def __len__(self) -> int:
        return self.plan.num_steps(len(self._labels_cpu))

    def __iter__(self):
        plan = self.plan.sample(self._labels_cpu, self._generator())
        yield from gather(self.split.train_x, self.split.train_y, plan)


class MultiLabelBatchLoader(_EpochLoader):
    """Multi-label batches of a :class:`~zsl_lightning.data.multilabel_split.MultiLabelSplit`.

    In memory: index plans exactly like the single-label loader (``RandomBatches``: ceil(N / B) steps of k
    batches). Streaming: ``k`` passes over the file per epoch, chunks in a random order, rows shuffled in a
    device buffer of ``buffer_rows``; floor(k · N / (k · B)) steps.
    """

    def __init__(self, split, plan: BatchPlan, seed: int, epoch_fn, rank: int, device):
        super().__init__(plan, seed, epoch_fn, rank)
        self.split, self.device = split, torch.device(device)
        self.k, self.batch = int(getattr(plan, "batches_per_step", 1)), int(plan.batch_size)
        if len(split.train) < self.batch:
            raise ConfigError(f"batch size {self.batch} is larger than the training set ({len(split.train)} images).")

    def __len__(self) -> int:
        n = len(self.split.train)
        if self.split.train.in_memory:
            return self.plan.num_steps(n)
        return max(1, (self.k * n) // (self.k * self.batch))

    def __iter__(self):
        g = self._generator()
        store = self.split.train
        if store.in_memory:
            plan = self.plan.sample(torch.zeros(len(store), dtype=torch.long), g)
            yield from gather(store.x, store.y, plan, torch.float32)
            return
        yield from self._stream(g)

    def _stream(self, g: torch.Generator):
        """Chunks in a random order into a device buffer; each full buffer is shuffled and cut into batches.
        Row positions travel with the rows and become ``idx``."""
        steps, k, b, cr = len(self), self.k, self.batch, self.split.chunk_rows
        buf: list[tuple[torch.Tensor, ...]] = []
        pending: list[tuple[torch.Tensor, ...]] = []
        emitted = 0

        def drain(final: bool):
            nonlocal buf
            x, y, pos = (torch.cat(parts) for parts in zip(*buf, strict=True))
            perm = torch.randperm(len(x), generator=g).to(x.device)
            x, y, pos = x[perm], y[perm], pos[perm]
            n_full = (len(x) // b) * b
            for i in range(0, n_full, b):
                pending.append((x[i : i + b], y[i : i + b], pos[i : i + b]))
            buf = [] if final else [(x[n_full:], y[n_full:], pos[n_full:])]

        def ready():
            nonlocal emitted
            while len(pending) >= k and emitted < steps:
                group, pending[:] = pending[:k], pending[k:]
                emitted += 1
                x, y, pos = (torch.stack(parts) for parts in zip(*group, strict=True))
                yield {"x": x, "target": y.float(), "idx": pos}

        for _ in range(k):
            order = torch.randperm(self.split.num_train_chunks, generator=g).numpy()
            for j, (x, y) in zip(order, self.split.train_chunks(order), strict=False):
                pos = torch.arange(int(j) * cr, int(j) * cr + len(x))
                buf.append(tuple(t.to(self.device, non_blocking=True) for t in (x, y, pos)))
                if sum(len(t[0]) for t in buf) >= self.split.buffer_rows:
                    drain(final=False)
                yield from ready()
        if buf:
            drain(final=True)
        yield from ready()
