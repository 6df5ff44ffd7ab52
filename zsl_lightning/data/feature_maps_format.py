"""On-disk formats of multi-label feature MAPS (GBE-MLZSL): cached multi-scale maps (here), the BiAM / LESA
per-image layout (``biam_format.py``) and raw image lists (``image_list_format.py``).

Readers, writers and validation only; batching and the datamodule live elsewhere. Layouts: docs/data.md,
"Multi-label feature maps".

**Cached multi-scale maps** (this package's format, written by ``scripts/cache_feature_maps.py`` and by the
``synthetic_maps`` generator), one HDF5 file per split::

    maps_<s>      N x C_s x s x s  float16, one dataset per scale s (e.g. maps_28, maps_14, maps_7),
                  chunked (chunk_rows, C_s, s, s) along N
    labels        N x L int8: +1 positive, -1 negative, 0 unknown
    labels_81     optional, N x U int8 (+1/-1/0): a training file's labels over the U labels that
                  data.mode=standard trains on (NUS-WIDE: the 81 concepts); any name, data.standard_labels_key
    image_names   N utf-8 strings (the image's relative path, or any unique id)
    attrs         format="zsl_lightning.feature_maps", version=1, scales=[28, 14, 7], backbone (str),
                  input_size (int, e.g. 224), complete (1 once the writer closed cleanly)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zsl_lightning.data.h5_handle import LazyH5
from zsl_lightning.data.multilabel_format import check_label_values, missing_files
from zsl_lightning.errors import DataError

FORMAT_NAME = "zsl_lightning.feature_maps"
FORMAT_VERSION = 1

CACHED_MAPS_LAYOUT = """\
<file>.h5   maps_<s> N x C x s x s float16 per scale s (maps_28, maps_14, maps_7), labels N x L int8 (+1/-1/0),
            image_names N strings; attrs format, version, scales, backbone, input_size, complete;
            data.mode=standard: the training file also holds labels_81 N x U int8 (data.standard_labels_key)"""
CACHED_MAPS_SOURCE = ("scripts/cache_feature_maps.py (images + a frozen VGG19) or the synthetic_maps generator; "
                      "see docs/data.md, 'Multi-label feature maps'")


def train_val_ranges(num_rows: int, train_fraction: float = 0.8) -> tuple[range, range]:
    """BiAM / LESA's validation split: the first ``int(0.8 N)`` rows train, the rest validate."""
    cut = int(train_fraction * num_rows)
    return range(0, cut), range(cut, num_rows)


def _check_pm1(labels: np.ndarray, where: str) -> None:
    """check_label_values plus the one thing it lets through: {0, 1}-coded labels. In this format 0 means
    unknown, so a block with zeros but not a single -1 is almost surely multi-hot (0 = negative)."""
    check_label_values(labels, where)
    if labels.size and labels.shape[-1] > 1 and not (labels == -1).any() and (labels == 0).any():
        raise DataError(f"'{where}': labels look {{0, 1}}-coded (no -1 at all); this format codes negatives as -1 "
                        "and 0 as unknown. Convert with labels * 2 - 1 if 0 meant negative.")


def _check_finite(x: np.ndarray, path: Path | str, what: str, start: int, stop: int) -> None:
    if not np.isfinite(x).all():
        bad = np.nonzero(~np.isfinite(x.reshape(len(x), -1)).all(1))[0]
        raise DataError(f"'{path}': {what} rows {start}..{stop - 1} contain NaN/inf (first bad row {start + bad[0]}, "
                        f"{len(bad)} bad rows). Re-create the file (a float16 overflow above 65,504 also gives inf).")


@dataclass
class MapsInfo:
    """Geometry of a cached-maps file (read from metadata only)."""

    path: Path
    num_rows: int
    scales: tuple[int, ...]
    channels: dict[int, int]
    num_labels: int
    backbone: str
    input_size: int
    attrs: dict = field(default_factory=dict)

    def feature_shape(self, scale: int) -> tuple[int, int, int]:
        return self.channels[scale], scale, scale


def inspect_feature_maps(path: Path | str, expected_labels: int | None = None, what: str = "cached feature maps",
                         scales: Sequence[int] | None = None, labels_key: str = "labels",
                         missing_hint: str = "") -> MapsInfo:
    """Check a cached-maps file's attributes, datasets, shapes and dtypes (no data read); errors name the file,
    the dataset and the fix. ``labels_key``: the label dataset read as the rows' labels (``labels``, or e.g.
    ``labels_81`` in data.mode=standard; ``missing_hint`` is added to the error when it is absent)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        missing_files(what, path.parent, {"file": path.name}, CACHED_MAPS_LAYOUT, CACHED_MAPS_SOURCE)
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT_NAME:
                raise DataError(f"'{path}' ({what}) is not a cached-maps file (attribute format="
                                f"{attrs.get('format')!r}, expected {FORMAT_NAME!r}). Layout:\n{CACHED_MAPS_LAYOUT}")
            if int(attrs.get("version", -1)) != FORMAT_VERSION:
                raise DataError(f"'{path}': cached-maps version {attrs.get('version')}, this code reads "
                                f"{FORMAT_VERSION}; re-create it with {CACHED_MAPS_SOURCE}.")
            if int(attrs.get("complete", 0)) != 1:
                raise DataError(f"'{path}' is incomplete: its writer did not finish (interrupted?). Re-create it "
                                f"with {CACHED_MAPS_SOURCE}.")
            file_scales = tuple(int(s) for s in np.atleast_1d(attrs.get("scales", [])))
            need = ["labels", "image_names", *(f"maps_{s}" for s in file_scales)]
            missing = [k for k in need if k not in f]
            if not missing and labels_key not in f:
                raise DataError(f"'{path}' ({what}) has no dataset '{labels_key}'; found {sorted(f.keys())}. "
                                f"{missing_hint}".rstrip())
            if missing or not file_scales:
                raise DataError(f"'{path}' ({what}) lacks dataset(s) {missing or ['maps_<s>']}; found "
                                f"{sorted(f.keys())}. Layout:\n{CACHED_MAPS_LAYOUT}")
            n = f["labels"].shape[0]
            channels = {}
            for s in file_scales:
                d = f[f"maps_{s}"]
                if d.ndim != 4 or d.shape[0] != n or d.shape[2:] != (s, s):
                    raise DataError(f"'{path}': 'maps_{s}' has shape {d.shape}; expected ({n}, C, {s}, {s}) "
                                    f"(N = the rows of 'labels').")
                if d.dtype.kind != "f":
                    raise DataError(f"'{path}': 'maps_{s}' has dtype {d.dtype}; expected float16 (any float reads).")
                channels[s] = int(d.shape[1])
            ls, ns = f[labels_key].shape, f["image_names"].shape
            if len(ls) != 2 or ls[0] != n or f[labels_key].dtype.kind not in "iuf":
                raise DataError(f"'{path}': '{labels_key}' must be N x L integers (+1/-1/0) with N = {n}, got {ls} "
                                f"{f[labels_key].dtype}.")
            if ns != (n,):
                raise DataError(f"'{path}': 'image_names' has shape {ns}; expected ({n},), one name per row.")
    except OSError as e:
        raise DataError(f"Could not read '{path}' ({what}) as HDF5: {e}") from None
    if n == 0:
        raise DataError(f"'{path}' ({what}) is empty.")
    if expected_labels is not None and ls[1] != expected_labels:
        raise DataError(f"'{path}' ({what}): '{labels_key}' has {ls[1]} columns, expected {expected_labels}.")
    for s in scales or ():
        if s not in channels:
            raise DataError(f"'{path}' has scales {list(file_scales)}; scale {s} was asked for (data config).")
    return MapsInfo(path, int(n), file_scales, channels, int(ls[1]), str(attrs.get("backbone", "")),
                    int(attrs.get("input_size", 0)), attrs)


class FeatureMapsWriter:
    """Appends batches to a new cached-maps file; written to ``<path>.partial`` and renamed on ``close()`` so an
    interrupted run never leaves a file that looks complete. Use as a context manager.

    ``channels`` maps each scale to its channel count, e.g. ``{28: 256, 14: 512, 7: 512}``. Maps are stored
    float16 (finite values checked after the cast), labels int8 (+1 / -1 / 0, checked per batch).
    ``extra_labels`` names further label datasets and their widths (e.g. ``{"labels_81": 81}``, the training
    labels of data.mode=standard); ``append`` then takes their rows in ``extra``.
    """

    def __init__(self, path: Path | str, channels: Mapping[int, int], num_labels: int, *, backbone: str,
                 input_size: int, chunk_rows: int = 64, attrs: Mapping | None = None,
                 extra_labels: Mapping[str, int] | None = None):
        import h5py

        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.channels = {int(s): int(c) for s, c in channels.items()}
        self.num_labels, self.num_rows = int(num_labels), 0
        self.widths = {"labels": self.num_labels, **{str(k): int(v) for k, v in dict(extra_labels or {}).items()}}
        self.f = h5py.File(self.tmp, "w")
        self.f.attrs.update({"format": FORMAT_NAME, "version": FORMAT_VERSION, "complete": 0,
                             "scales": np.array(sorted(self.channels, reverse=True), np.int64),
                             "backbone": str(backbone), "input_size": int(input_size), **dict(attrs or {})})
        for s, c in self.channels.items():
            self.f.create_dataset(f"maps_{s}", shape=(0, c, s, s), maxshape=(None, c, s, s), dtype=np.float16,
                                  chunks=(chunk_rows, c, s, s))
        for key, width in self.widths.items():
            self.f.create_dataset(key, shape=(0, width), maxshape=(None, width), dtype=np.int8,
                                  chunks=(max(chunk_rows, 1024), width))
        self.f.create_dataset("image_names", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(),
                              chunks=(1024,))

    def append(self, maps: Mapping[int, torch.Tensor | np.ndarray], labels, names: Sequence[str],
               extra: Mapping | None = None) -> None:
        b = len(names)
        given = {"labels": labels, **dict(extra or {})}
        if set(given) != set(self.widths):
            raise DataError(f"'{self.path}': a batch came with label datasets {sorted(given)}; the file has "
                            f"{sorted(self.widths)}.")
        labs = {}
        for key, val in given.items():
            lab = np.asarray(val.cpu() if isinstance(val, torch.Tensor) else val)
            if lab.shape != (b, self.widths[key]):
                raise DataError(f"'{self.path}': a batch of {b} names came with '{key}' {lab.shape}; expected "
                                f"({b}, {self.widths[key]}).")
            _check_pm1(lab, f"{self.path}:{key} (rows {self.num_rows}..{self.num_rows + b - 1})")
            labs[key] = lab.astype(np.int8)
        if set(maps) != set(self.channels):
            raise DataError(f"'{self.path}': batch has scales {sorted(maps)}, the file {sorted(self.channels)}.")
        blocks = {}
        for s, c in self.channels.items():
            m = maps[s]
            with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
                m = (m.detach().to("cpu", torch.float16).numpy() if isinstance(m, torch.Tensor)
                     else np.asarray(m).astype(np.float16))
            if m.shape != (b, c, s, s):
                raise DataError(f"'{self.path}': maps at scale {s} have shape {m.shape}; expected ({b}, {c}, {s}, {s}).")
            _check_finite(m, self.path, f"maps_{s} (being written)", self.num_rows, self.num_rows + b)
            blocks[s] = m
        lo, hi = self.num_rows, self.num_rows + b
        for s, m in blocks.items():
            self.f[f"maps_{s}"].resize(hi, axis=0)
            self.f[f"maps_{s}"][lo:hi] = m
        for key, val in (*labs.items(), ("image_names", np.array([str(n) for n in names], object))):
            self.f[key].resize(hi, axis=0)
            self.f[key][lo:hi] = val
        self.num_rows = hi

    def close(self) -> Path:
        if self.f:
            self.f.attrs["complete"] = 1
            self.f.close()
            self.f = None
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.f:
            self.f.close()
            self.f = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> FeatureMapsWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.abort() if exc_type else self.close()


class FeatureMapsFile(LazyH5):
    """Reads row ranges of a cached-maps file as float32 tensors (validated on open by ``inspect_feature_maps``).

    The HDF5 handle opens lazily and again after a fork, so the object can go to DataLoader workers.
    """

    def __init__(self, path: Path | str, expected_labels: int | None = None, scales: Sequence[int] | None = None,
                 what: str = "cached feature maps", labels_key: str = "labels", missing_hint: str = ""):
        self.info = inspect_feature_maps(path, expected_labels, what, scales, labels_key, missing_hint)
        self.path, self.labels_key = self.info.path, labels_key

    def __len__(self) -> int:
        return self.info.num_rows

    def read(self, start: int, stop: int, scales: Sequence[int] | None = None) -> tuple[dict, torch.Tensor]:
        """Rows ``start:stop`` → ({scale: (B, C_s, s, s) float32}, labels (B, L) int8 of ``labels_key``); all
        scales by default.
        NaN/inf in the maps or labels outside +1/-1/0 raise DataError naming the file and the row range."""
        n = self.info.num_rows
        if not (0 <= start <= stop <= n):
            raise IndexError(f"rows {start}:{stop} outside 0:{n} of '{self.path}'")
        f = self._file()
        out = {}
        for s in scales or self.info.scales:
            if s not in self.info.channels:
                raise DataError(f"'{self.path}' has scales {list(self.info.scales)}; scale {s} was asked for.")
            x = f[f"maps_{s}"][start:stop]
            _check_finite(x, self.path, f"maps_{s}", start, stop)
            out[s] = torch.from_numpy(x.astype(np.float32))
        y = np.asarray(f[self.labels_key][start:stop])
        _check_pm1(y, f"{self.path}:{self.labels_key} (rows {start}..{stop - 1})")
        return out, torch.from_numpy(y.astype(np.int8))

    def image_names(self, start: int = 0, stop: int | None = None) -> list[str]:
        raw = self._file()["image_names"][start:stop]
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw]

