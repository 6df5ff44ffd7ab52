"""Row stores: a selection of rows (and label columns) of one multi-label HDF5 file, read in chunks.

The file format (keys, shapes, label values) is :mod:`zsl_lightning.data.multilabel_format`; this module only
reads rows. Features keep their trailing shape (``N x D`` vectors or ``N x C x H x W`` feature maps, from
:attr:`H5Info.feature_shape`); nothing here flattens them.

A source of another layout (e.g. multi-scale feature maps, one HDF5 dataset per scale) plugs in as another
store with the same interface — ``__len__``, ``num_chunks(chunk_rows)``, ``read_chunk(j, chunk_rows,
labels_only)`` returning ``(features, int8 labels)`` of the ``j``-th block of selected rows, ``chunks``,
``feature_shape``, ``in_memory`` (then the tensors ``x``, ``y``), ``load`` and ``to``: the split, the loaders
and evaluation use only these (docs/architecture.md, "Data layer"). Optionally a store reads features as stored
(``raw_dtype``, ``read_chunk(..., raw=True)``) and preprocesses them later (``prepare``): the streaming loader
then buffers float16 files as float16 (docs/methods/multilabel.md, "Memory").
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from zsl_lightning.data.multilabel_format import H5Info, check_label_values, decode_labels
from zsl_lightning.data.preprocessing import identity
from zsl_lightning.errors import DataError


def read_rows(info: H5Info, keys: tuple[str, ...], lo: int, hi: int, pick) -> list[np.ndarray]:
    """Rows ``lo..hi-1`` (then ``[pick]``) of each dataset in ``keys``, from one opening of the file. A read
    failure is a :class:`DataError` naming the file and the dataset (a file truncated or a broken external
    link after load shows up here)."""
    import h5py

    key = None
    try:
        with h5py.File(info.path, "r") as f:
            out = []
            for key in keys:
                out.append(np.asarray(f[key][lo:hi])[pick])
            return out
    except (OSError, KeyError) as e:
        where = f"dataset '{key}'" if key is not None else "the file"
        raise DataError(f"'{info.path}': could not read rows {lo}..{hi - 1} of {where}: {e}") from None


class ChunkedRows:
    """The store interface over ``rows`` (and label columns ``cols``) of a source, or over in-memory tensors
    ``x`` / ``y``: chunks of ``chunk_rows`` selected rows, an in-memory copy, a device copy. A subclass reads the
    selected rows ``sel`` of its source (:meth:`_read`) and builds a copy of itself holding tensors
    (:meth:`_with_data`)."""

    #: rows per read when :meth:`load` copies the whole selection into memory
    load_rows = 8192
    rows: np.ndarray
    x: torch.Tensor | None
    y: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def in_memory(self) -> bool:
        return self.x is not None

    def num_chunks(self, chunk_rows: int) -> int:
        return max(1, math.ceil(len(self.rows) / chunk_rows))

    def _read(self, sel: np.ndarray, labels_only: bool):
        """``(features, int8 labels)`` of the selected rows ``sel``; a store offering :attr:`raw_dtype` also
        takes ``raw=True``."""
        raise NotImplementedError

    def _with_data(self, x: torch.Tensor, y: torch.Tensor):
        raise NotImplementedError

    @property
    def raw_dtype(self) -> torch.dtype | None:
        """The dtype :meth:`read_chunk` with ``raw=True`` returns features in, unpreprocessed, when that is
        narrower than float32 (a float16 file); ``None``: raw reads are not offered (features come float32,
        preprocessed)."""
        return None

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Features read with ``raw=True`` (``n x *feature_shape``), preprocessed: float32, exactly what a
        plain read of the same rows gives."""
        raise NotImplementedError

    def read_chunk(self, j: int, chunk_rows: int, labels_only: bool = False, raw: bool = False):
        if self.in_memory:
            part = slice(j * chunk_rows, (j + 1) * chunk_rows)
            return (None if labels_only else self.x[part]), self.y[part]
        sel = self.rows[j * chunk_rows : (j + 1) * chunk_rows]
        return self._read(sel, labels_only, raw=True) if raw else self._read(sel, labels_only)

    def chunks(self, chunk_rows: int, order: np.ndarray | None = None, labels_only: bool = False,
               raw: bool = False) -> Iterator:
        for j in (order if order is not None else range(self.num_chunks(chunk_rows))):
            if len(self.rows) == 0:
                return
            yield self.read_chunk(int(j), chunk_rows, labels_only, raw)

    def load(self, chunk_rows: int | None = None):
        """An in-memory copy (features preprocessed), filled chunk by chunk into tensors allocated once (no
        list of chunks + concatenation: the copy exists once)."""
        if self.in_memory:
            return self
        x = y = None
        at = 0
        for xc, yc in self.chunks(chunk_rows or self.load_rows):
            if x is None:
                x = torch.empty(len(self), *xc.shape[1:], dtype=xc.dtype)
                y = torch.empty(len(self), *yc.shape[1:], dtype=yc.dtype)
            x[at : at + len(xc)], y[at : at + len(yc)] = xc, yc
            at += len(xc)
        if x is None:
            x, y = torch.empty(0, *self.feature_shape), torch.empty(0, 0, dtype=torch.int8)
        return self._with_data(x, y)

    def to(self, device):
        if not self.in_memory:
            return self
        return self._with_data(self.x.to(device), self.y.to(device))


class RowStore(ChunkedRows):
    """A selection of rows (and label columns) of one HDF5 file, or of in-memory tensors.

    ``chunks`` yields (features float32, labels int8) blocks of ``chunk_rows`` selected rows, reading one
    contiguous file range per block (so streaming never loads the whole file), preprocessed with ``prep``.
    """

    def __init__(self, info: H5Info | None, rows: np.ndarray, cols: np.ndarray | None = None, prep=identity,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None):
        self.info, self.rows, self.cols, self.prep = info, np.asarray(rows, dtype=np.int64), cols, prep
        self.x, self.y = x, y  # in-memory copy (already preprocessed and column-selected)

    @property
    def name(self) -> str:
        return str(self.info.path) if self.info is not None else "<memory>"

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:]) if self.in_memory else self.info.feature_shape

    def with_prep(self, prep) -> RowStore:
        return RowStore(self.info, self.rows, self.cols, prep)

    @property
    def raw_dtype(self) -> torch.dtype | None:
        """float16 for a streamed float16 file (read as stored, preprocessed per batch by :meth:`prepare`)."""
        if self.in_memory or self.info is None:
            return None
        if not hasattr(self, "_file_dtype"):
            import h5py

            with h5py.File(self.info.path, "r") as f:
                self._file_dtype = np.dtype(f[self.info.features_key].dtype)
        return torch.float16 if self._file_dtype == np.float16 else None

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """``prep`` of raw rows (elementwise or per row, so the same numbers as preprocessing a whole chunk)."""
        out = self.prep(x.cpu().numpy())
        if not np.all(np.isfinite(out)):
            raise DataError(f"'{self.info.path}': NaN/inf features in a batch of training rows.")
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)

    def _read(self, sel: np.ndarray, labels_only: bool, raw: bool = False):
        lo, hi = int(sel[0]), int(sel[-1]) + 1
        pick = slice(None) if hi - lo == len(sel) else sel - lo  # a contiguous run needs no gather copy
        keys = (self.info.labels_key,) if labels_only else (self.info.labels_key, self.info.features_key)
        y, *x = read_rows(self.info, keys, lo, hi, pick)
        if self.cols is not None:
            y = y[:, self.cols]
        check_label_values(y, self.info.path)
        y = decode_labels(y, self.info.label_coding)  # data.label_coding=binary: {0, 1} read as -1 / +1
        y_t = torch.from_numpy(np.ascontiguousarray(y).astype(np.int8))
        if labels_only:
            return None, y_t
        if raw:
            return torch.from_numpy(np.ascontiguousarray(x[0])), y_t
        x = self.prep(x[0])
        if not np.all(np.isfinite(x)):
            raise DataError(f"'{self.info.path}': NaN/inf features in rows {lo}..{hi - 1}.")
        return torch.from_numpy(np.ascontiguousarray(x)), y_t

    def _with_data(self, x: torch.Tensor, y: torch.Tensor) -> RowStore:
        return RowStore(self.info, self.rows, self.cols, self.prep, x, y)
