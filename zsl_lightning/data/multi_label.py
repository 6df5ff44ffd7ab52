"""Multi-label benchmarks (NUS-WIDE, Open Images, MS COCO, the embedded ``synthetic_ml``).

Readers live in :mod:`zsl_lightning.data.multilabel_format`; this module turns files into splits and
batches, small data in memory (on the training device) and large files streamed from HDF5 in chunks.

Memory bound when streaming (``in_memory: false`` or a file above ``memory_limit_gb``): the training loader
holds at most ``buffer_rows + chunk_rows`` rows of features on the device (4·D bytes each: 65,536 +
8,192 rows × 4,096 × 4 B ≈ 1.2 GB for NUS-WIDE's VGG19 features; benchmarks/bench_multilabel.py measures
5.0 GiB peak RSS for a whole streamed epoch of a 2.47 GiB file, temporary copies included); evaluation
reads ``chunk_rows`` rows at a time and keeps one score per (test image, label) plus the int8 labels (NUS-WIDE GZSL: 107,859 × 1,006 ×
(4 + 1) B ≈ 0.54 GB). Scores are float32 (``eval_scores_dtype: auto``) unless one evaluation's score matrix
would exceed ``eval_scores_max_gb`` (4 GB; Open Images GZSL: 125,456 × 7,586 × 4 B = 3.5 GiB stays float32);
then float16, whose rounding ties can move AP (measured in docs/methods/multilabel.md). The label-set pool
reads the training labels chunk by chunk too (``train_label_sets``: a seeded subset chosen before reading).

Splits (see ``docs/methods/multilabel.md``):

``test``  train on the training file's images with 1..``max_positives`` positives over the seen labels;
          ZSL on the ZSL test file (unseen columns), GZSL on the GZSL test file (all columns).
``dev``   the last ``val_image_fraction`` of the training file's rows are validation images, and a seeded
          ``val_label_fraction`` of the SEEN labels act as pseudo-unseen labels: their columns are hidden
          from dev training (images are filtered on the remaining columns). Validation ZSL scores the
          pseudo-unseen columns of the validation images, GZSL all seen columns. No test file is read.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsl_lightning.data.base import ZSLDataModule, epoch_seed
from zsl_lightning.data.multilabel_format import (
    H5_LAYOUT,
    NUSWIDE_FILES,
    NUSWIDE_LAYOUT,
    NUSWIDE_SOURCE,
    STANDARD_FILES,
    STANDARD_LAYOUT,
    STANDARD_SOURCE,
    H5Info,
    LabelSpace,
    check_label_values,
    inspect_h5,
    inspect_standard_train,
    missing_files,
    read_h5_label_space,
    read_nuswide_label_space,
)
from zsl_lightning.errors import ConfigError, DataError


# ------------------------------------------------------------------------------------------ preprocessing
@dataclass
class MinMax:
    """Reference preprocessing: MinMaxScaler fitted on the training features, then × 1/max (per split)."""

    lo: np.ndarray
    scale: np.ndarray
    mx: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.subtract(x, self.lo, dtype=np.float32)  # one new array, then in place (chunks are ~134 MB)
        out /= self.scale
        out /= self.mx
        return out


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _l2(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    return (x / np.maximum(np.linalg.norm(flat, axis=1), 1e-12).reshape(-1, *([1] * (x.ndim - 1)))).astype(np.float32)


# ------------------------------------------------------------------------------------------ row stores
class RowStore:
    """A selection of rows (and label columns) of one HDF5 file, or of in-memory tensors.

    ``chunks`` yields (features float32, labels int8) blocks of ``chunk_rows`` selected rows, reading one
    contiguous file range per block (so streaming never loads the whole file), preprocessed with ``prep``.
    """

    def __init__(self, info: H5Info | None, rows: np.ndarray, cols: np.ndarray | None = None, prep=_identity,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None):
        self.info, self.rows, self.cols, self.prep = info, np.asarray(rows, dtype=np.int64), cols, prep
        self.x, self.y = x, y  # in-memory copy (already preprocessed and column-selected)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def in_memory(self) -> bool:
        return self.x is not None

    @property
    def name(self) -> str:
        return str(self.info.path) if self.info is not None else "<memory>"

    def with_prep(self, prep) -> RowStore:
        return RowStore(self.info, self.rows, self.cols, prep)

    def num_chunks(self, chunk_rows: int) -> int:
        return max(1, math.ceil(len(self.rows) / chunk_rows))

    def read_chunk(self, j: int, chunk_rows: int, labels_only: bool = False):
        if self.in_memory:
            part = slice(j * chunk_rows, (j + 1) * chunk_rows)
            return (None if labels_only else self.x[part]), self.y[part]
        sel = self.rows[j * chunk_rows : (j + 1) * chunk_rows]
        import h5py

        lo, hi = int(sel[0]), int(sel[-1]) + 1
        pick = slice(None) if hi - lo == len(sel) else sel - lo  # a contiguous run needs no gather copy
        with h5py.File(self.info.path, "r") as f:
            y = np.asarray(f[self.info.labels_key][lo:hi])[pick]
            x = None if labels_only else np.asarray(f[self.info.features_key][lo:hi])[pick]
        if self.cols is not None:
            y = y[:, self.cols]
        check_label_values(y, self.info.path)
        y_t = torch.from_numpy(np.ascontiguousarray(y).astype(np.int8))
        if labels_only:
            return None, y_t
        x = self.prep(x)
        if not np.all(np.isfinite(x)):
            raise DataError(f"'{self.info.path}': NaN/inf features in rows {lo}..{hi - 1}.")
        return torch.from_numpy(np.ascontiguousarray(x)), y_t

    def chunks(self, chunk_rows: int, order: np.ndarray | None = None, labels_only: bool = False) -> Iterator:
        for j in (order if order is not None else range(self.num_chunks(chunk_rows))):
            if len(self.rows) == 0:
                return
            yield self.read_chunk(int(j), chunk_rows, labels_only)

    def labels(self, chunk_rows: int = 65536) -> torch.Tensor:
        """All selected labels as an int8 tensor (rows × columns)."""
        if self.in_memory:
            return self.y
        return torch.cat([y for _, y in self.chunks(chunk_rows, labels_only=True)])

    def load(self, chunk_rows: int = 8192) -> RowStore:
        """An in-memory copy (features preprocessed)."""
        if self.in_memory:
            return self
        xs, ys = zip(*self.chunks(chunk_rows), strict=True) if len(self.rows) else ((), ())
        x = torch.cat(xs) if xs else torch.empty(0, *self.info.feature_shape)
        y = torch.cat(ys) if ys else torch.empty(0, 0, dtype=torch.int8)
        return RowStore(self.info, self.rows, self.cols, self.prep, x, y)

    def to(self, device) -> RowStore:
        if not self.in_memory:
            return self
        return RowStore(self.info, self.rows, self.cols, self.prep, self.x.to(device), self.y.to(device))


# ------------------------------------------------------------------------------------------ the split
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
        if self.train.in_memory:
            return tuple(self.train.x.shape[1:])
        return self.train.info.feature_shape

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

    # -- what methods read of the training rows (they never touch a store) ------------------------------
    @property
    def train_in_memory(self) -> bool:
        return self.train.in_memory

    def train_source(self) -> _TrainSource:
        """The training rows as a chunked source (``num_chunks``, ``chunks(order)`` → (features, ±1/0 int8
        labels)), streamed when the file is: the shape :func:`zsl_lightning.eval.classifier.train_classifier`
        iterates."""
        return _TrainSource(self)

    def sample_train_rows(self, cap: int | None, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Real training rows (features, int8 labels): all of them, or at most ``cap`` — whole chunks in a
        ``generator``-seeded random order when streamed, so memory stays bounded."""
        store = self.train
        if store.in_memory and (cap is None or len(store) <= cap):
            return store.x, store.y
        order = torch.randperm(store.num_chunks(self.chunk_rows), generator=generator).numpy()
        xs, ys, n = [], [], 0
        for xc, yc in store.chunks(self.chunk_rows, order):
            xs.append(xc), ys.append(yc)
            n += len(xc)
            if cap is not None and n >= cap:
                break
        return torch.cat(xs)[:cap], torch.cat(ys)[:cap]

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
        bounds = torch.searchsorted(sorted_pick, torch.arange(0, self.train.num_chunks(cr) + 1) * cr)
        for j in range(self.train.num_chunks(cr)):
            lo, hi = int(bounds[j]), int(bounds[j + 1])
            if hi > lo:  # chunks without a chosen row are not read
                _, y = self.train.read_chunk(j, cr, labels_only=True)
                kept.append(y[sorted_pick[lo:hi] - j * cr] > 0)
        out = torch.cat(kept)  # rows in increasing position; put them back in the order of ``pick``
        inverse = torch.empty_like(where)
        inverse[where] = torch.arange(len(where))
        return out[inverse]


class _TrainSource:
    def __init__(self, split: MultiLabelSplit):
        self.split = split
        self.num_chunks = split.train.num_chunks(split.chunk_rows)
        self.feature_dim = split.feature_dim

    def chunks(self, order=None):
        return self.split.train.chunks(self.split.chunk_rows, order)


# ------------------------------------------------------------------------------------------ batches
class MultiLabelBatchLoader:
    """Training batches ``{"x": (k, B, *feature_shape), "target": (k, B, S) float (+1/-1/0), "idx": (k, B) (in memory)}`` on the device.

    In memory: index plans exactly like the single-label loader (``RandomBatches``: ceil(N / B) steps of k
    batches). Streaming: ``k`` passes over the file per epoch, chunks in a random order, rows shuffled in a
    device buffer of ``buffer_rows``; floor(k · N / (k · B)) steps. Both draw from a generator seeded with
    (seed, epoch, rank), so a resumed run sees the same batches.
    """

    def __init__(self, split: MultiLabelSplit, plan, seed: int, epoch_fn, rank: int, device):
        self.split, self.plan, self.seed, self.epoch_fn, self.rank = split, plan, seed, epoch_fn, rank
        self.device = torch.device(device)
        self.k, self.batch = int(getattr(plan, "batches_per_step", 1)), int(plan.batch_size)
        if len(split.train) < self.batch:
            raise ConfigError(f"batch size {self.batch} is larger than the training set ({len(split.train)} images).")

    def __len__(self) -> int:
        n = len(self.split.train)
        if self.split.train.in_memory:
            return self.plan.num_steps(n)
        return max(1, (self.k * n) // (self.k * self.batch))

    def __iter__(self):
        g = torch.Generator().manual_seed(epoch_seed(self.seed, int(self.epoch_fn()), self.rank))
        store = self.split.train
        if store.in_memory:
            idx_all = self.plan.sample(torch.zeros(len(store), dtype=torch.long), g).to(store.x.device)
            for idx in idx_all:
                yield {"x": store.x[idx], "target": store.y[idx].float(), "idx": idx}
            return
        yield from self._stream(store, g)

    def _stream(self, store: RowStore, g: torch.Generator):
        steps, k, b = len(self), self.k, self.batch
        buf_x: list[torch.Tensor] = []
        buf_y: list[torch.Tensor] = []
        pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        emitted = 0

        def drain(final: bool):
            nonlocal buf_x, buf_y, emitted
            x, y = torch.cat(buf_x), torch.cat(buf_y)
            perm = torch.randperm(len(x), generator=g).to(x.device)
            x, y = x[perm], y[perm]
            n_full = (len(x) // b) * b
            for i in range(0, n_full, b):
                pending.append((x[i : i + b], y[i : i + b]))
            rest = slice(n_full, None)
            buf_x, buf_y = ([x[rest]], [y[rest]]) if not final else ([], [])

        for _ in range(k):
            order = torch.randperm(store.num_chunks(self.split.chunk_rows), generator=g).numpy()
            for x, y in store.chunks(self.split.chunk_rows, order):
                buf_x.append(x.to(self.device, non_blocking=True))
                buf_y.append(y.to(self.device, non_blocking=True))
                if sum(len(t) for t in buf_x) >= self.split.buffer_rows:
                    drain(final=False)
                while len(pending) >= k and emitted < steps:
                    group, pending[:] = pending[:k], pending[k:]
                    emitted += 1
                    yield {"x": torch.stack([t[0] for t in group]),
                           "target": torch.stack([t[1] for t in group]).float()}
        if buf_x:
            drain(final=True)
        while len(pending) >= k and emitted < steps:
            group, pending[:] = pending[:k], pending[k:]
            emitted += 1
            yield {"x": torch.stack([t[0] for t in group]), "target": torch.stack([t[1] for t in group]).float()}


# ------------------------------------------------------------------------------------------ datamodule
class MultiLabelDataModule(ZSLDataModule):
    """A multi-label benchmark in the NUS-WIDE layout (``label_space: nuswide``) or with an
    ``embeddings.h5`` (``label_space: h5``: Open Images, MS COCO). See the module docstring for splits."""

    label_mode = "multi"

    def __init__(
        self,
        root: str,
        name: str = "NUS-WIDE",
        label_space: str = "nuswide",
        mode: str = "zsl",
        standard_labels_key: str = "labels_81",
        files: dict | None = None,
        top_k: list[int] = (3, 5),
        preprocess: str = "minmax",
        min_positives: int = 1,
        max_positives: int | None = 10,
        val_image_fraction: float = 0.2,
        val_label_fraction: float = 0.2,
        in_memory: str | bool = "auto",
        memory_limit_gb: float = 1.0,
        chunk_rows: int = 8192,
        buffer_rows: int = 65536,
        eval_scores_dtype: str = "auto",
        eval_scores_max_gb: float = 4.0,
        source: str = NUSWIDE_SOURCE,
        seed: int = 0,
    ):
        super().__init__(name=name, seed=seed)
        self.root = Path(str(root)).expanduser()
        if label_space not in ("nuswide", "h5"):
            raise ConfigError(f"data.label_space must be nuswide | h5, got '{label_space}'.")
        if preprocess not in ("minmax", "l2", "none"):
            raise ConfigError(f"data.preprocess must be minmax | l2 | none, got '{preprocess}'.")
        if not (0 < val_image_fraction < 1 and 0 < val_label_fraction < 1):
            raise ConfigError("data.val_image_fraction and data.val_label_fraction must be in (0, 1).")
        if eval_scores_dtype not in ("auto", "float32", "float16"):
            raise ConfigError("data.eval_scores_dtype must be auto | float32 | float16.")
        if mode not in ("zsl", "standard"):
            raise ConfigError(f"data.mode must be zsl (Tables 1-3) | standard (Table 4), got '{mode}'.")
        defaults = dict(NUSWIDE_FILES) if label_space == "nuswide" else {
            "embeddings": "embeddings.h5", "train": "train.h5", "zsl_test": "zsl_test.h5", "gzsl_test": "gzsl_test.h5"}
        defaults["train_standard"] = STANDARD_FILES[label_space]
        self.files = {**defaults, **dict(files or {})}
        self.mode, self.standard_labels_key = mode, str(standard_labels_key)
        self.label_space_kind, self.source = label_space, source
        self.top_k = tuple(int(k) for k in top_k)
        self.preprocess = preprocess
        self.min_positives, self.max_positives = int(min_positives), max_positives
        self.val_image_fraction, self.val_label_fraction = float(val_image_fraction), float(val_label_fraction)
        self.in_memory, self.memory_limit_gb = in_memory, float(memory_limit_gb)
        self.chunk_rows, self.buffer_rows = int(chunk_rows), int(buffer_rows)
        self.eval_scores_dtype, self.eval_scores_max_gb = eval_scores_dtype, float(eval_scores_max_gb)
        self.space: LabelSpace | None = None
        self.h5: dict[str, H5Info] = {}

    # -------------------------------------------------------------------------------- loading
    @property
    def tasks(self) -> tuple[str, ...]:
        """The evaluation tasks, i.e. the metric prefixes (``zsl_*``, ``gzsl_*``; ``std_*`` in standard mode)."""
        return ("std",) if self.mode == "standard" else ("zsl", "gzsl")

    def _label_space_files(self) -> tuple[str, ...]:
        return ("taglist", "concepts", "glove") if self.label_space_kind == "nuswide" else ("embeddings",)

    def _load(self) -> None:
        layout = NUSWIDE_LAYOUT if self.label_space_kind == "nuswide" else H5_LAYOUT
        if self.mode == "standard":
            base = {k: self.files[k] for k in (*self._label_space_files(), "zsl_test")}
            missing_files(self.name, self.root, base, layout, self.source)
            missing_files(self.name, self.root, {"train_standard": self.files["train_standard"]},
                          STANDARD_LAYOUT, STANDARD_SOURCE,
                          "data.mode=standard (Gupta et al. Table 4) needs the training labels of the labels it "
                          "scores (NUS-WIDE: the 81 concepts); the released files do not have them.")
        else:
            missing_files(self.name, self.root, {k: v for k, v in self.files.items() if k != "train_standard"},
                          layout, self.source)
        if self.label_space_kind == "nuswide":
            self.space = read_nuswide_label_space(self.root / self.files["taglist"], self.root / self.files["concepts"],
                                                  self.root / self.files["glove"])
        else:
            self.space = read_h5_label_space(self.root / self.files["embeddings"])
        s, u = self.space.num_seen, self.space.num_unseen
        if s == 0 or u == 0:
            raise DataError(f"{self.name}: {s} seen and {u} unseen labels; both must be non-empty.")
        if self.mode == "standard":
            self._load_standard(u)
            return
        self.h5 = {
            "train": inspect_h5(self.root / self.files["train"], s, "training file (seen labels)"),
            "zsl_test": inspect_h5(self.root / self.files["zsl_test"], u, "ZSL test file (unseen labels)"),
            "gzsl_test": inspect_h5(self.root / self.files["gzsl_test"], s + u, "GZSL test file (all labels)"),
        }
        shapes = {k: v.feature_shape for k, v in self.h5.items()}
        if len(set(shapes.values())) != 1:
            raise DataError(f"{self.name}: the feature shapes of the files differ: {shapes}.")

    def _load_standard(self, u: int) -> None:
        """Standard mode: the U labels (NUS-WIDE: the 81 concepts) are the training labels; the test images are
        the ZSL test file's images with at least one positive among them (LESA's protocol, Table 4)."""
        tr = inspect_standard_train(self.root / self.files["train_standard"], u, self.standard_labels_key)
        te = inspect_h5(self.root / self.files["zsl_test"], u, "test file (labels over the same U labels)")
        if tr.feature_shape != te.feature_shape:
            raise DataError(f"{self.name}: the feature shapes of the files differ: train {tr.feature_shape}, "
                            f"test {te.feature_shape}.")
        self.h5 = {"train": tr, "zsl_test": te}
        self._std_test_rows = self._valid_rows(te, np.arange(te.num_rows), None, 1, None)
        if len(self._std_test_rows) == 0:
            raise DataError(f"{self.name}: no test image of '{te.path}' has a positive label.")

    @property
    def info(self) -> dict[str, Any]:
        self.load()
        tr = self.h5["train"]
        if self.mode == "standard":
            u = self.space.num_unseen
            return {
                "name": self.name, "label_mode": self.label_mode, "mode": "standard",
                "feature_dim": int(np.prod(tr.feature_shape)), "feature_shape": list(tr.feature_shape),
                "embedding_dim": int(self.space.embeddings.shape[1]),
                "attribute_dim": int(self.space.embeddings.shape[1]),
                "num_classes": u, "num_seen": u, "num_unseen": 0,
                "num_train_images": tr.num_rows,
                "num_test_images": len(self._std_test_rows),  # with at least one positive label
                "top_k": list(self.top_k),
            }
        return {
            "name": self.name,
            "label_mode": self.label_mode,
            "feature_dim": int(np.prod(tr.feature_shape)),
            "feature_shape": list(tr.feature_shape),
            "embedding_dim": int(self.space.embeddings.shape[1]),
            "attribute_dim": int(self.space.embeddings.shape[1]),
            "num_classes": self.space.num_seen + self.space.num_unseen,
            "num_seen": self.space.num_seen,
            "num_unseen": self.space.num_unseen,
            "num_train_images": tr.num_rows,
            "num_test_images": self.h5["gzsl_test"].num_rows,
            "num_test_unseen": self.h5["zsl_test"].num_rows,
            "top_k": list(self.top_k),
        }

    def _keep_in_memory(self, info: H5Info, rows: int) -> bool:
        if self.in_memory in (True, "true", "True"):
            return True
        if self.in_memory in (False, "false", "False"):
            return False
        return rows * int(np.prod(info.feature_shape)) * 4 <= self.memory_limit_gb * 2**30

    def _valid_rows(self, info: H5Info, rows: np.ndarray, cols: np.ndarray | None, lo: int | None = None,
                    hi: int | None = -1) -> np.ndarray:
        """Rows with ``lo..hi`` positives over ``cols`` (default: the training filter, min_positives..max_positives;
        reference: 1..10; ``hi=None``: no upper bound). Reads labels only, chunk by chunk."""
        lo = self.min_positives if lo is None else lo
        hi = self.max_positives if hi == -1 else hi
        store = RowStore(info, rows, cols)
        keep = []
        for _, y in store.chunks(self.chunk_rows, labels_only=True):
            n_pos = np.count_nonzero(y.numpy() > 0, axis=1)  # numpy: no int64 copy of the chunk (torch makes one)
            ok = n_pos >= lo
            if hi is not None:
                ok &= n_pos <= int(hi)
            keep.append(ok)
        mask = np.concatenate(keep) if keep else np.zeros(0, bool)
        return rows[mask]

    def _fit_prep(self, store: RowStore):
        if self.preprocess == "none":
            return _identity
        if self.preprocess == "l2":
            return _l2
        lo = hi = None
        for x, _ in store.chunks(self.chunk_rows):
            x = x.numpy().reshape(len(x), -1)
            lo = x.min(0) if lo is None else np.minimum(lo, x.min(0))
            hi = x.max(0) if hi is None else np.maximum(hi, x.max(0))
        shape = store.info.feature_shape
        scale = hi - lo
        scale[scale == 0] = 1.0
        mx = float(((hi - lo) / scale).max()) or 1.0
        return MinMax(lo.reshape(shape), scale.reshape(shape), mx)

    def _finish(self, store: RowStore, prep) -> RowStore:
        store = store.with_prep(prep)
        return store.load(self.chunk_rows) if self._keep_in_memory(store.info, len(store)) else store

    def _num_val_images(self, tr: H5Info) -> int:
        """How many of the last training rows the dev split holds out as validation images."""
        n_val = max(1, int(round(self.val_image_fraction * tr.num_rows)))
        if n_val >= tr.num_rows:
            raise DataError(f"{self.name}: too few training images for a validation split.")
        return n_val

    def _build_split(self, name: str) -> MultiLabelSplit:
        if self.mode == "standard":
            return self._build_standard_split(name)
        s, u = self.space.num_seen, self.space.num_unseen
        emb = torch.as_tensor(self.space.embeddings)
        names = self.space.seen_names + self.space.unseen_names
        tr = self.h5["train"]
        if name == "test":
            seen, unseen = np.arange(s), np.arange(s, s + u)
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows), None)
            if len(train_rows) == 0:
                raise DataError(f"{self.name}: no training image has {self.min_positives}..{self.max_positives} "
                                "positive labels.")
            prep = self._fit_prep(RowStore(tr, train_rows))
            train = self._finish(RowStore(tr, train_rows), prep)
            zsl_info, gzsl_info = self.h5["zsl_test"], self.h5["gzsl_test"]
            eval_zsl = self._finish(RowStore(zsl_info, np.arange(zsl_info.num_rows)), prep)
            eval_gzsl = self._finish(RowStore(gzsl_info, np.arange(gzsl_info.num_rows)), prep)
            train_cols, zsl_cols, gzsl_cols = seen, unseen, np.arange(s + u)
        else:
            n_val = self._num_val_images(tr)
            rng = np.random.default_rng(self.seed + 101)
            n_pseudo = max(1, int(round(self.val_label_fraction * s)))
            if n_pseudo >= s:
                raise DataError(f"{self.name}: too few seen labels to hold some out as pseudo-unseen labels.")
            unseen = np.sort(rng.choice(s, n_pseudo, replace=False))
            seen = np.setdiff1d(np.arange(s), unseen)
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows - n_val), seen)
            if len(train_rows) == 0:
                raise DataError(f"{self.name}: the dev split has no training image with positive labels.")
            prep = self._fit_prep(RowStore(tr, train_rows))
            train = self._finish(RowStore(tr, train_rows, seen), prep)
            val_rows = np.arange(tr.num_rows - n_val, tr.num_rows)
            eval_zsl = self._finish(RowStore(tr, val_rows, unseen), prep)
            eval_gzsl = self._finish(RowStore(tr, val_rows, np.arange(s)), prep)
            train_cols, zsl_cols, gzsl_cols = seen, unseen, np.arange(s)
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)  # noqa: E731
        return MultiLabelSplit(
            name=name, class_embeddings=emb, seen_classes=t(seen), unseen_classes=t(unseen),
            train=train, train_cols=t(train_cols), eval_zsl=eval_zsl, eval_zsl_cols=t(zsl_cols),
            eval_gzsl=eval_gzsl, eval_gzsl_cols=t(gzsl_cols), top_k=self.top_k, class_names=names,
            chunk_rows=self.chunk_rows, buffer_rows=self.buffer_rows,
            eval_scores_dtype=self._scores_dtype(name, (len(eval_zsl), len(zsl_cols)), (len(eval_gzsl), len(gzsl_cols))),
        )

    def _build_standard_split(self, name: str) -> MultiLabelSplit:
        """Table 4: label ids 0..U-1 are the U labels (NUS-WIDE: the 81 concepts, Concepts81 order), all seen.
        ``test``: train on every training image with min..max positives among them, evaluate the test images
        with at least one positive. ``dev``: the last ``val_image_fraction`` of the training rows are the
        validation images (again only those with a positive); no label is held out."""
        s, u = self.space.num_seen, self.space.num_unseen
        emb = torch.as_tensor(self.space.embeddings[s:])
        tr = self.h5["train"]
        if name == "test":
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows), None)
            eval_info, eval_rows = self.h5["zsl_test"], self._std_test_rows
        else:
            n_val = self._num_val_images(tr)
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows - n_val), None)
            eval_info = tr
            eval_rows = self._valid_rows(tr, np.arange(tr.num_rows - n_val, tr.num_rows), None, 1, None)
            if len(eval_rows) == 0:
                raise DataError(f"{self.name}: no validation image (the last {n_val} training rows) has a positive label.")
        if len(train_rows) == 0:
            raise DataError(f"{self.name}: no training image has {self.min_positives}..{self.max_positives} "
                            f"positive labels in '{tr.path}' ({self.standard_labels_key}).")
        prep = self._fit_prep(RowStore(tr, train_rows))
        train = self._finish(RowStore(tr, train_rows), prep)
        evals = self._finish(RowStore(eval_info, eval_rows), prep)
        cols = torch.arange(u)
        return MultiLabelSplit(
            name=name, class_embeddings=emb, seen_classes=cols, unseen_classes=cols[:0], train=train,
            train_cols=cols, eval_zsl=evals, eval_zsl_cols=cols[:0], eval_gzsl=evals, eval_gzsl_cols=cols,
            top_k=self.top_k, class_names=list(self.space.unseen_names), chunk_rows=self.chunk_rows,
            buffer_rows=self.buffer_rows, eval_scores_dtype=self._scores_dtype(name, (len(evals), u)), mode="standard",
        )

    def _scores_dtype(self, split: str, *shapes: tuple[int, int]) -> str:
        """``auto``: float32 unless the largest evaluation's score matrix exceeds ``eval_scores_max_gb``,
        then float16 (with a notice: its ties can move AP, see docs/methods/multilabel.md)."""
        if self.eval_scores_dtype != "auto":
            return self.eval_scores_dtype
        gb = max(r * c for r, c in shapes) * 4 / 2**30
        if gb <= self.eval_scores_max_gb:
            return "float32"
        print(f"[zsl-lightning] {self.name} ({split}): float32 evaluation scores would take {gb:.1f} GB > "
              f"data.eval_scores_max_gb={self.eval_scores_max_gb:g}; keeping them as float16 (rounding ties can "
              "move AP slightly; raise data.eval_scores_max_gb or set data.eval_scores_dtype=float32).",
              file=sys.stderr)
        return "float16"

    def train_dataloader(self):
        rank = self.trainer.global_rank if self.trainer is not None else 0
        split = self.device_split(self._device())
        return MultiLabelBatchLoader(split, self.plan, self.seed, self._current_epoch, rank, self._device())
