"""The shuffle buffer of the streaming multi-label loader: rows held once, in arrays allocated once.

:class:`~zsl_lightning.data.loaders.MultiLabelBatchLoader` streams a training file in chunks into a buffer of
``data.buffer_rows`` rows; each full buffer is shuffled and cut into batches (docs/methods/multilabel.md,
"Memory"). The buffer here is one preallocated block of rows — features, int8 labels, row positions — on the
training device, of ``buffer_rows + chunk_rows`` rows at most: a chunk is copied into its free tail, a shuffle
is an index permutation (no permuted copy), a batch is a gather of ``k x B`` rows, and the few rows left over
after the last whole batch move to the front. Nothing else of the buffer's size is ever allocated, so peak
memory is the buffer plus one chunk being read. Float16 files are kept float16 (``store.raw_dtype``) and
preprocessed per batch (``store.prepare``). On CUDA the chunk goes through a pinned host array, reused.
"""

from __future__ import annotations

import torch


class ShuffleBuffer:
    """Rows ``0..n-1`` of preallocated ``x`` / ``y`` / ``pos`` arrays (allocated at the first chunk, when the
    row shapes are known). ``store`` gives :meth:`~zsl_lightning.data.multilabel_store.ChunkedRows.prepare`
    when ``raw`` (features kept as read)."""

    def __init__(self, capacity: int, device: torch.device, store=None, raw: bool = False):
        self.capacity, self.device, self.store, self.raw = int(capacity), torch.device(device), store, raw
        self.x = self.y = self.pos = None
        self.n = 0
        self._staging: tuple[torch.Tensor, torch.Tensor] | None = None
        self._copied: torch.cuda.Event | None = None

    def _allocate(self, x: torch.Tensor, y: torch.Tensor) -> None:
        c, dev = self.capacity, self.device
        self.x = torch.empty((c, *x.shape[1:]), dtype=x.dtype, device=dev)
        self.y = torch.empty((c, *y.shape[1:]), dtype=y.dtype, device=dev)
        self.pos = torch.empty(c, dtype=torch.long, device=dev)

    def append(self, x: torch.Tensor, y: torch.Tensor, first_pos: int) -> None:
        """Copy a chunk (rows at positions ``first_pos ..``) into the free tail."""
        if self.x is None:
            self._allocate(x, y)
        m, at = len(x), self.n
        if at + m > self.capacity:
            raise RuntimeError(f"shuffle buffer overflow: {at} + {m} rows > capacity {self.capacity}")
        if self.device.type == "cuda" and x.device.type == "cpu":
            x, y = self._stage(x, y)
        self.x[at : at + m].copy_(x, non_blocking=True)
        self.y[at : at + m].copy_(y, non_blocking=True)
        torch.arange(first_pos, first_pos + m, out=self.pos[at : at + m])
        if self._copied is not None:
            self._copied.record()
        self.n += m

    def _stage(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk in pinned host memory (one pair of arrays reused), so the copy to the device is async."""
        if self._staging is None or len(self._staging[0]) < len(x):
            self._staging = (torch.empty(x.shape, dtype=x.dtype, pin_memory=True),
                             torch.empty(y.shape, dtype=y.dtype, pin_memory=True))
            self._copied = torch.cuda.Event()
        elif self._copied is not None:
            self._copied.synchronize()  # the previous chunk's copy out of the staging arrays is done
        sx, sy = self._staging[0][: len(x)], self._staging[1][: len(y)]
        sx.copy_(x), sy.copy_(y)
        return sx, sy

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows ``idx`` (any shape) as new tensors ``(x float32, y int8, pos)`` of shape ``idx.shape + ...``."""
        x = self.x[idx]
        if self.raw:
            x = self.store.prepare(x.reshape(-1, *x.shape[idx.dim():])).view(*idx.shape, *x.shape[idx.dim():])
        return x, self.y[idx], self.pos[idx]

    def keep(self, idx: torch.Tensor) -> None:
        """Keep only rows ``idx`` (few: fewer than a batch), in that order, at the front."""
        m = len(idx)
        if m:
            x, y, p = self.x[idx], self.y[idx], self.pos[idx]
            self.x[:m], self.y[:m], self.pos[:m] = x, y, p
        self.n = m
