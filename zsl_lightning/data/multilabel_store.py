"""Row stores: a selection of rows (and label columns) of one multi-label HDF5 file, read in chunks.

The file format (keys, shapes, label values) is :mod:`zsl_lightning.data.multilabel_format`; this module only
reads rows. Features keep their trailing shape (``N x D`` vectors or ``N x C x H x W`` feature maps, from
:attr:`H5Info.feature_shape`); nothing here flattens them.

A source of another layout (e.g. multi-scale feature maps, one HDF5 dataset per scale) plugs in as another
store with the same interface — ``__len__``, ``num_chunks(chunk_rows)``, ``read_chunk(j, chunk_rows,
labels_only)`` returning ``(features, int8 labels)`` of the ``j``-th block of selected rows, ``chunks``,
``feature_shape``, ``in_memory`` (then the tensors ``x``, ``y``), ``load`` and ``to``: the split, the loaders
and evaluation use only these (docs/architecture.md, "Data layer").
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
        raise NotImplementedError

    def _with_data(self, x: torch.Tensor, y: torch.Tensor):
        raise NotImplementedError

    def read_chunk(self, j: int, chunk_rows: int, labels_only: bool = False):
        if self.in_memory:
            part = slice(j * chunk_rows, (j + 1) * chunk_rows)
            return (None if labels_only else self.x[part]), self.y[part]
        return self._read(self.rows[j * chunk_rows : (j + 1) * chunk_rows], labels_only)

    def chunks(self, chunk_rows: int, order: np.ndarray | None = None, labels_only: bool = False) -> Iterator:
        for j in (order if order is not None else range(self.num_chunks(chunk_rows))):
            if len(self.rows) == 0:
                return
            yield self.read_chunk(int(j), chunk_rows, labels_only)

    def load(self, chunk_rows: int | None = None):
        """An in-memory copy (features preprocessed)."""
        if self.in_memory:
            return self
        xs, ys = zip(*self.chunks(chunk_rows or self.load_rows), strict=True) if len(self.rows) else ((), ())
        x = torch.cat(xs) if xs else torch.empty(0, *self.feature_shape)
        y = torch.cat(ys) if ys else torch.empty(0, 0, dtype=torch.int8)
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

    def _read(self, sel: np.ndarray, labels_only: bool):
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
        x = self.prep(x[0])
        if not np.all(np.isfinite(x)):
            raise DataError(f"'{self.info.path}': NaN/inf features in rows {lo}..{hi - 1}.")
        return torch.from_numpy(np.ascontiguousarray(x)), y_t

    def _with_data(self, x: torch.Tensor, y: torch.Tensor) -> RowStore:
        return RowStore(self.info, self.rows, self.cols, self.prep, x, y)
