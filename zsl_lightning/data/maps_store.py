"""Row stores over the three feature-map sources of GBE-MLZSL (docs/data.md, "Multi-label feature maps").

A :class:`MapsStore` has :class:`~zsl_lightning.data.multilabel_store.RowStore`'s interface (``len``,
``num_chunks``, ``read_chunk``, ``chunks``, ``feature_shape``, ``in_memory`` then ``x`` / ``y``, ``load``,
``to``, ``with_prep``), so the multi-label split, loaders and evaluation use it unchanged. It reads through a
*reader*, one per source, reading the label dataset ``labels_key`` (``labels``; data.mode=standard: the training
labels over the scored labels, e.g. ``labels_81``):

* :class:`CachedMapsReader` — cached multi-scale maps (``feature_maps_format``), chunked HDF5 ranges;
* :class:`BiamReader` — the BiAM / LESA per-image 14 x 14 x 512 layout (single scale);
* :class:`ImageReader` — an image list (``image_list_format``): uint8 images, the backbone runs in the method.

**Packed maps.** The batch contract stays ``{"x", "target", "idx"}`` with ``x`` a tensor: the maps of one image
are packed into one float32 vector, scale after scale in the order of ``layout`` (e.g. ``((28, C28), (14, C14),
(7, C7))``), each map flattened C-major (``C x s x s``). :func:`unpack_maps` gives back ``{s: (B, C, s, s)}``
views (no copy). Chosen over a dict ``x`` because every piece of the data layer (buffers, ``x[idx]``,
``torch.cat``, device copies) already handles one tensor; the layout travels in ``data_info.maps_layout``.
Images travel as uint8 ``(3, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from zsl_lightning.data.multilabel_format import check_label_values
from zsl_lightning.data.multilabel_store import ChunkedRows
from zsl_lightning.errors import DataError

Layout = tuple[tuple[int, int], ...]  # ((scale, channels), ...), in packing order


def packed_dim(layout: Layout) -> int:
    return int(sum(c * s * s for s, c in layout))


def pack_maps(maps: dict, layout: Layout) -> torch.Tensor:
    """``{s: (B, C, s, s)}`` → ``(B, Σ C·s²)`` float32, scales in ``layout`` order."""
    return torch.cat([maps[s].reshape(len(maps[s]), -1).float() for s, _ in layout], dim=1)


def unpack_maps(x: torch.Tensor, layout: Layout) -> dict[int, torch.Tensor]:
    """Inverse of :func:`pack_maps`: ``(B, D)`` → ``{s: (B, C, s, s)}`` views of ``x``."""
    if x.shape[-1] != packed_dim(layout):
        raise DataError(f"packed maps have {x.shape[-1]} values per image; layout {list(layout)} needs "
                        f"{packed_dim(layout)}.")
    out, off = {}, 0
    for s, c in layout:
        n = c * s * s
        out[int(s)] = x[:, off : off + n].view(len(x), c, s, s)
        off += n
    return out


class CachedMapsReader:
    """Rows of a cached-maps file, packed (``feature_maps_format.FeatureMapsFile`` underneath)."""

    kind = "maps"

    def __init__(self, path: Path | str, expected_labels: int | None, scales: Sequence[int], what: str,
                 labels_key: str = "labels", missing_hint: str = ""):
        from zsl_lightning.data.feature_maps_format import FeatureMapsFile

        self.file = FeatureMapsFile(path, expected_labels, scales, what, labels_key, missing_hint)
        self.path, self.num_rows = self.file.path, self.file.info.num_rows
        self.num_labels = self.file.info.num_labels
        self.layout: Layout = tuple((int(s), self.file.info.channels[int(s)]) for s in scales)
        self.feature_shape = (packed_dim(self.layout),)

    def read(self, sel: np.ndarray, labels_only: bool):
        from zsl_lightning.data.feature_maps_format import _check_pm1

        lo, hi = int(sel[0]), int(sel[-1]) + 1
        pick = slice(None) if hi - lo == len(sel) else sel - lo  # a contiguous run needs no gather copy
        try:
            if labels_only:
                y = np.asarray(self.file._file()[self.file.labels_key][lo:hi])[pick]
                _check_pm1(y, f"{self.path}:{self.file.labels_key} (rows {lo}..{hi - 1})")
                return None, y
            maps, y = self.file.read(lo, hi, [s for s, _ in self.layout])
        except OSError as e:
            raise DataError(f"'{self.path}': could not read rows {lo}..{hi - 1}: {e}. Re-create the file.") from None
        return pack_maps(maps, self.layout)[pick], y.numpy()[pick]


class BiamReader:
    """Images of a BiAM / LESA per-image file (``biam_format.BiamMapsFile``): one 14 x 14 x 512 map each."""

    kind = "maps"

    def __init__(self, path: Path | str, num_labels: int, names_file: Path | str | None, what: str,
                 labels_key: str = "labels", missing_hint: str = ""):
        from zsl_lightning.data.biam_format import BIAM_CHANNELS, BIAM_SIDE, BiamMapsFile

        self.file = BiamMapsFile(path, num_labels, names_file, what, labels_key, missing_hint)
        self.path, self.num_rows, self.num_labels = self.file.path, len(self.file), int(num_labels)
        self.layout: Layout = ((BIAM_SIDE, BIAM_CHANNELS),)
        self.feature_shape = (packed_dim(self.layout),)

    def read(self, sel: np.ndarray, labels_only: bool):
        try:
            if labels_only:
                f, key = self.file._file(), self.file.labels_key
                y = np.stack([np.asarray(f[f"{self.file.names[int(i)]}-{key}"]).reshape(-1) for i in sel])
                if y.shape[1] != self.num_labels:
                    raise DataError(f"'{self.path}': labels have {y.shape[1]} values; expected {self.num_labels}.")
                check_label_values(y, self.path)
                return None, y.astype(np.int8)
            x, y = self.file.read(sel)
        except (OSError, KeyError) as e:
            raise DataError(f"'{self.path}': could not read images {int(sel[0])}..{int(sel[-1])}: {e}") from None
        return x.reshape(len(x), -1), y.numpy()


class ImageReader:
    """Images of an image list (``image_list_format.ImageList``), uint8 ``(3, size, size)``."""

    kind = "images"
    layout: Layout = ()

    def __init__(self, list_file: Path | str, images_root: Path | str | None, expected_labels: int, size: int,
                 labels_key: str = "labels", missing_hint: str = ""):
        from zsl_lightning.data.image_list_format import ImageList

        self.file = ImageList(list_file, images_root, expected_labels, size=size, labels_key=labels_key,
                              missing_hint=missing_hint)
        self.path, self.num_rows, self.num_labels = self.file.list_file, len(self.file), int(expected_labels)
        self.feature_shape = (3, int(size), int(size))

    def read(self, sel: np.ndarray, labels_only: bool):
        if labels_only:
            return None, self.file.labels[sel]
        x, y = self.file.read(sel)
        return x, y.numpy()


class ColumnView:
    """A reader whose label columns default to ``cols`` (the ZSL view of a GZSL test file: its unseen columns)."""

    def __init__(self, reader, cols: np.ndarray):
        self.reader, self.cols = reader, np.asarray(cols)
        self.path, self.num_rows, self.feature_shape = reader.path, reader.num_rows, reader.feature_shape
        self.kind, self.layout, self.num_labels = reader.kind, reader.layout, len(self.cols)


class MapsStore(ChunkedRows):
    """A selection of rows (and label columns) of a reader, or its in-memory copy; RowStore's interface."""

    def __init__(self, reader, rows: np.ndarray, cols: np.ndarray | None = None,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None):
        if isinstance(reader, ColumnView):
            cols = reader.cols if cols is None else reader.cols[np.asarray(cols)]
            reader = reader.reader
        self.info = self.reader = reader
        self.rows, self.cols = np.asarray(rows, dtype=np.int64), None if cols is None else np.asarray(cols)
        self.x, self.y = x, y

    load_rows = 1024

    @property
    def name(self) -> str:
        return str(self.reader.path)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.reader.feature_shape)

    def with_prep(self, prep) -> MapsStore:
        """Maps are not rescaled (GBE reads raw VGG19 activations); ``prep`` is ignored."""
        return self

    def _read(self, sel: np.ndarray, labels_only: bool):
        x, y = self.reader.read(sel, labels_only)
        if self.cols is not None:
            y = y[:, self.cols]
        return x, torch.from_numpy(np.ascontiguousarray(y).astype(np.int8))

    def _with_data(self, x: torch.Tensor, y: torch.Tensor) -> MapsStore:
        return MapsStore(self.reader, self.rows, self.cols, x, y)


class PooledReader:
    """A maps reader seen as vectors: per scale and channel, the spatial mean and max (``2·Σ C_s`` values,
    scales in layout order, means first). ``data.view=pooled``: what a vector method (``ridge_ml``) reads."""

    def __init__(self, reader):
        if reader.kind != "maps":
            raise DataError("data.view=pooled needs feature maps (data.source=cached | biam), not images.")
        self.reader, self.path, self.num_rows = reader, reader.path, reader.num_rows
        self.num_labels, self.kind, self.layout = reader.num_labels, "pooled", ()
        self.feature_shape = (2 * sum(c for _, c in reader.layout),)

    def read(self, sel: np.ndarray, labels_only: bool):
        x, y = self.reader.read(sel, labels_only)
        if x is None:
            return None, y
        maps = unpack_maps(x, self.reader.layout)
        means = [m.mean(dim=(2, 3)) for m in maps.values()]
        maxes = [m.amax(dim=(2, 3)) for m in maps.values()]
        return torch.cat(means + maxes, dim=1), y
