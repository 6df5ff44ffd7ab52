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
    device buffer of ``buffer_rows`` (:class:`~zsl_lightning.data.shuffle_buffer.ShuffleBuffer`);
    floor(k · N / (k · B)) steps.

    Data parallel (``world_size`` W > 1, streamed): every pass draws one chunk order from a generator seeded
    by ``(seed, epoch)`` alone, the same on every rank, and rank ``r`` reads chunks ``order[r::W]`` — its own
    shard of rows, a new one each pass; its buffer shuffles use its own ``(seed, epoch, rank)`` generator.
    Every rank runs the same number of steps, floor(R / B) where R is the fewest rows a rank can be dealt in
    a pass, so collective ops never wait on a rank that ran out (rows past that are read and dropped, like
    ``DistributedSampler(drop_last=True)``). With W = 1 nothing changes. In memory, every rank draws its own
    plan over all rows (``(seed, epoch, rank)``), as the single-label loader does.
    """

    def __init__(self, split, plan: BatchPlan, seed: int, epoch_fn, rank: int, device, world_size: int = 1):
        super().__init__(plan, seed, epoch_fn, rank)
        self.split, self.device, self.world_size = split, torch.device(device), int(world_size)
        self.k, self.batch = int(getattr(plan, "batches_per_step", 1)), int(plan.batch_size)
        if len(split.train) < self.batch:
            raise ConfigError(f"batch size {self.batch} is larger than the training set ({len(split.train)} images).")
        if self.world_size > 1 and not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} is not one of the {self.world_size} ranks")
        if not split.train.in_memory and self.world_size > split.num_train_chunks:
            raise ConfigError(f"{self.world_size} ranks but the streamed training file has only "
                              f"{split.num_train_chunks} chunks of data.chunk_rows={split.chunk_rows} rows: lower "
                              "data.chunk_rows so that every rank reads at least one chunk.")
        if not split.train.in_memory and self.world_size > 1 and self.rows_per_rank() < self.batch:
            raise ConfigError(f"with {self.world_size} ranks a rank may be dealt only {self.rows_per_rank()} rows per "
                              f"pass, fewer than a batch ({self.batch}): lower data.chunk_rows or the batch size.")

    def rows_per_rank(self) -> int:
        """Streamed: the fewest training rows a rank reads in one pass (all rows when W = 1)."""
        n, w, cr = len(self.split.train), self.world_size, self.split.chunk_rows
        if w == 1:
            return n
        c = self.split.num_train_chunks
        return (c // w) * cr - (c * cr - n)  # the fewest chunks, one of them the short last chunk

    def __len__(self) -> int:
        if self.split.train.in_memory:
            return self.plan.num_steps(len(self.split.train))
        return max(1, (self.k * self.rows_per_rank()) // (self.k * self.batch))

    def __iter__(self):
        g = self._generator()
        store = self.split.train
        if store.in_memory:
            plan = self.plan.sample(torch.zeros(len(store), dtype=torch.long), g)
            yield from gather(store.x, store.y, plan, torch.float32)
            return
        if self.world_size == 1:  # one generator for chunk orders and shuffles, as before data parallelism
            yield from self._stream(g, g)
            return
        shared = torch.Generator().manual_seed(epoch_seed(self.seed, int(self.epoch_fn()), 0, stream=3))
        yield from self._stream(shared, g)

    def _stream(self, g_order: torch.Generator, g_shuffle: torch.Generator):
        """Chunks (this rank's share of a random order) into the shuffle buffer; each full buffer is permuted
        (an index permutation) and cut into batches, gathered ``k`` at a time. Row positions travel with the rows
        and become ``idx``. Batches of one buffer not yet emitted when the next chunk arrives are copied out
        first (fewer than ``k``), and the rows past the last whole batch move to the buffer's front."""
        from zsl_lightning.data.shuffle_buffer import ShuffleBuffer

        steps, k, b, cr = len(self), self.k, self.batch, self.split.chunk_rows
        store, limit = self.split.train, self.split.buffer_rows
        raw = store.raw_dtype is not None
        buf = ShuffleBuffer(min(max(limit, b) + cr, k * len(store)), self.device, store, raw)
        pending: list = []  # a batch: an index tensor into the buffer, or rows already copied out
        emitted = 0

        def drain() -> torch.Tensor:
            perm = torch.randperm(buf.n, generator=g_shuffle).to(self.device)
            n_full = (buf.n // b) * b
            pending.extend(perm[:n_full].view(-1, b))
            return perm[n_full:]

        def ready():
            nonlocal emitted
            while len(pending) >= k and emitted < steps:
                group, pending[:] = pending[:k], pending[k:]
                emitted += 1
                if all(isinstance(p, torch.Tensor) for p in group):
                    x, y, pos = buf.take(torch.stack(group))
                else:
                    parts = [buf.take(p) if isinstance(p, torch.Tensor) else p for p in group]
                    x, y, pos = (torch.stack(t) for t in zip(*parts, strict=True))
                yield {"x": x, "target": y.float(), "idx": pos}

        for _ in range(k):
            order = torch.randperm(self.split.num_train_chunks, generator=g_order).numpy()
            mine = order[self.rank :: self.world_size] if self.world_size > 1 else order  # W = 1: every chunk
            chunks = store.chunks(cr, mine, raw=True) if raw else self.split.train_chunks(mine)
            for j, (x, y) in zip(mine, chunks, strict=False):
                buf.append(x, y, int(j) * cr)
                if buf.n >= limit:
                    rest = drain()
                    yield from ready()
                    if emitted >= steps:
                        return
                    pending[:] = [buf.take(p) if isinstance(p, torch.Tensor) else p for p in pending]
                    buf.keep(rest)
        if buf.n:
            drain()
        yield from ready()
