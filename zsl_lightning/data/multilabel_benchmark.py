"""Multi-label benchmark files → splits (NUS-WIDE, Open Images, MS COCO, the embedded ``synthetic_ml``).

Readers and validation live in :mod:`.multilabel_format`, row reads in :mod:`.multilabel_store`, the split
in :mod:`.multilabel_split`; the datamodules of :mod:`.multi_label` are a few lines around these classes.
:class:`MultiLabelBenchmark` is ``data.mode=zsl`` (Tables 1-3), :class:`StandardMultiLabelBenchmark`
``data.mode=standard`` (Table 4; the protocol, shared with the feature-map benchmarks, is :mod:`.multilabel_standard`).

Memory bound when streaming (``in_memory: false`` or a file above ``memory_limit_gb``): the training loader
holds at most ``buffer_rows + chunk_rows`` rows of features on the device (4·D bytes each: 65,536 +
8,192 rows × 4,096 × 4 B ≈ 1.2 GB for NUS-WIDE's VGG19 features; benchmarks/bench_multilabel.py measures
5.0 GiB peak RSS for a whole streamed epoch of a 2.47 GiB file, temporary copies included); evaluation
reads ``chunk_rows`` rows at a time and keeps one score per (test image, label) plus the int8 labels
(NUS-WIDE GZSL: 107,859 × 1,006 × (4 + 1) B ≈ 0.54 GB). The score dtype is chosen by
:func:`zsl_lightning.eval.multi_label.scores_dtype`. The label-set pool reads the training labels chunk by
chunk too (``train_label_sets``: a seeded subset chosen before reading).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsl_lightning.data.multilabel_format import (
    H5_LAYOUT,
    LABEL_CODINGS,
    NUSWIDE_FILES,
    NUSWIDE_LAYOUT,
    NUSWIDE_SOURCE,
    STANDARD_FILES,
    STANDARD_LAYOUT,
    STANDARD_SOURCE,
    H5Info,
    check_label_coding,
    inspect_h5,
    inspect_standard_train,
    missing_files,
    read_h5_label_space,
    read_nuswide_label_space,
    scan_label_values,
)
from zsl_lightning.data.multilabel_split import MultiLabelSplit
from zsl_lightning.data.multilabel_standard import StandardProtocol
from zsl_lightning.data.multilabel_store import RowStore
from zsl_lightning.data.preprocessing import fit_streamed
from zsl_lightning.errors import ConfigError, DataError
from zsl_lightning.eval.multi_label import check_scores_dtype, scores_dtype


class MultiLabelBenchmark:
    """A multi-label benchmark in the NUS-WIDE layout (``label_space: nuswide``) or with an ``embeddings.h5``
    (``label_space: h5``: Open Images, MS COCO); ZSL / GZSL splits (module :mod:`.multilabel_split`)."""

    mode = "zsl"
    label_mode = "multi"

    def __init__(
        self,
        root: str,
        name: str = "NUS-WIDE",
        label_space: str = "nuswide",
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
        label_coding: str = "pm1",
    ):
        self.root, self.name, self.seed = Path(str(root)).expanduser(), name, int(seed)
        if label_space not in ("nuswide", "h5"):
            raise ConfigError(f"data.label_space must be nuswide | h5, got '{label_space}'.")
        if preprocess not in ("minmax", "l2", "none"):
            raise ConfigError(f"data.preprocess must be minmax | l2 | none, got '{preprocess}'.")
        if not (0 < val_image_fraction < 1 and 0 < val_label_fraction < 1):
            raise ConfigError("data.val_image_fraction and data.val_label_fraction must be in (0, 1).")
        self.eval_scores_dtype = check_scores_dtype(eval_scores_dtype)
        defaults = dict(NUSWIDE_FILES) if label_space == "nuswide" else {
            "embeddings": "embeddings.h5", "train": "train.h5", "zsl_test": "zsl_test.h5", "gzsl_test": "gzsl_test.h5"}
        defaults["train_standard"] = STANDARD_FILES[label_space]
        self.files = {**defaults, **dict(files or {})}
        self.standard_labels_key = str(standard_labels_key)
        self.label_space_kind, self.source = label_space, source
        self.top_k = tuple(int(k) for k in top_k)
        self.preprocess = preprocess
        self.min_positives, self.max_positives = int(min_positives), max_positives
        self.val_image_fraction, self.val_label_fraction = float(val_image_fraction), float(val_label_fraction)
        self.in_memory, self.memory_limit_gb = in_memory, float(memory_limit_gb)
        self.chunk_rows, self.buffer_rows = int(chunk_rows), int(buffer_rows)
        self.eval_scores_max_gb = float(eval_scores_max_gb)
        if label_coding not in LABEL_CODINGS:
            raise ConfigError(f"data.label_coding must be {' | '.join(LABEL_CODINGS)}, got '{label_coding}'.")
        self.label_coding = label_coding
        self.space = None
        self.h5: dict[str, H5Info] = {}

    # -------------------------------------------------------------------------------- loading
    @property
    def layout(self) -> str:
        return NUSWIDE_LAYOUT if self.label_space_kind == "nuswide" else H5_LAYOUT

    def _label_space_files(self) -> tuple[str, ...]:
        return ("taglist", "concepts", "glove") if self.label_space_kind == "nuswide" else ("embeddings",)

    def load(self) -> None:
        """Check every file exists, read the label space, and inspect the HDF5 files (headers only)."""
        self._check_files()
        if self.label_space_kind == "nuswide":
            self.space = read_nuswide_label_space(self.root / self.files["taglist"], self.root / self.files["concepts"],
                                                  self.root / self.files["glove"])
        else:
            self.space = read_h5_label_space(self.root / self.files["embeddings"])
        s, u = self.space.num_seen, self.space.num_unseen
        if s == 0 or u == 0:
            raise DataError(f"{self.name}: {s} seen and {u} unseen labels; both must be non-empty.")
        self._inspect(s, u)

    def _check_files(self) -> None:
        missing_files(self.name, self.root, {k: v for k, v in self.files.items() if k != "train_standard"},
                      self.layout, self.source)

    def _inspect(self, s: int, u: int) -> None:
        self.h5 = {
            "train": self._coded(inspect_h5(self.root / self.files["train"], s, "training file (seen labels)")),
            "zsl_test": self._coded(inspect_h5(self.root / self.files["zsl_test"], u, "ZSL test file (unseen labels)")),
            "gzsl_test": self._coded(inspect_h5(self.root / self.files["gzsl_test"], s + u,
                                                "GZSL test file (all labels)")),
        }
        shapes = {k: v.feature_shape for k, v in self.h5.items()}
        if len(set(shapes.values())) != 1:
            raise DataError(f"{self.name}: the feature shapes of the files differ: {shapes}.")

    def _coded(self, info: H5Info) -> H5Info:
        """``info`` after checking the value set of its whole label array against ``data.label_coding``."""
        check_label_coding(scan_label_values(info, self.chunk_rows), info, self.label_coding)
        return dataclasses.replace(info, label_coding=self.label_coding)

    @property
    def info(self) -> dict[str, Any]:
        tr, emb = self.h5["train"], self.space.embeddings
        return {
            "name": self.name, "label_mode": self.label_mode, **self._mode_info(),
            "feature_dim": int(np.prod(tr.feature_shape)), "feature_shape": list(tr.feature_shape),
            "embedding_dim": int(emb.shape[1]), "attribute_dim": int(emb.shape[1]),
            **self._counts(), "top_k": list(self.top_k),
        }

    def _mode_info(self) -> dict[str, Any]:
        return {}

    def _counts(self) -> dict[str, int]:
        s, u = self.space.num_seen, self.space.num_unseen
        return {"num_classes": s + u, "num_seen": s, "num_unseen": u, "num_train_images": self.h5["train"].num_rows,
                "num_test_images": self.h5["gzsl_test"].num_rows, "num_test_unseen": self.h5["zsl_test"].num_rows}

    # -------------------------------------------------------------------------------- split building
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
        store = self._store(info, rows, cols)
        keep = []
        for _, y in store.chunks(self.chunk_rows, labels_only=True):
            n_pos = np.count_nonzero(y.numpy() > 0, axis=1)  # numpy: no int64 copy of the chunk (torch makes one)
            ok = n_pos >= lo
            if hi is not None:
                ok &= n_pos <= int(hi)
            keep.append(ok)
        mask = np.concatenate(keep) if keep else np.zeros(0, bool)
        return rows[mask]

    def _store(self, info, rows: np.ndarray, cols: np.ndarray | None = None):
        """The row store of ``rows`` (label columns ``cols``) of the file ``info`` (a subclass with another file
        layout, e.g. :class:`~zsl_lightning.data.maps_benchmark.MapsBenchmark`, returns its own store)."""
        return RowStore(info, rows, cols)

    def _fit_prep(self, info: H5Info, train_rows: np.ndarray):
        """The preprocessing fitted on the training rows (all label columns: the filter already chose them)."""
        store = RowStore(info, train_rows)
        return fit_streamed(lambda: (x.numpy() for x, _ in store.chunks(self.chunk_rows)), self.preprocess)

    def _finish(self, store: RowStore, prep) -> RowStore:
        store = store.with_prep(prep)
        return store.load(self.chunk_rows) if self._keep_in_memory(store.info, len(store)) else store

    def _num_val_images(self, tr: H5Info) -> int:
        """How many of the last training rows the dev split holds out as validation images."""
        n_val = max(1, int(round(self.val_image_fraction * tr.num_rows)))
        if n_val >= tr.num_rows:
            raise DataError(f"{self.name}: too few training images for a validation split.")
        return n_val

    def _split(self, name: str, shapes: list[tuple[int, int]], **fields) -> MultiLabelSplit:
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)  # noqa: E731
        fields = {k: t(v) if k.endswith(("_cols", "_classes")) else v for k, v in fields.items()}
        dtype = scores_dtype(self.eval_scores_dtype, self.eval_scores_max_gb, f"{self.name} ({name})", *shapes)
        return MultiLabelSplit(name=name, top_k=self.top_k, chunk_rows=self.chunk_rows, buffer_rows=self.buffer_rows,
                               eval_scores_dtype=dtype, mode=self.mode, **fields)

    def build_split(self, name: str) -> MultiLabelSplit:
        s, u = self.space.num_seen, self.space.num_unseen
        tr = self.h5["train"]
        if name == "test":
            seen, unseen = np.arange(s), np.arange(s, s + u)
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows), None)
            if len(train_rows) == 0:
                raise DataError(f"{self.name}: no training image has {self.min_positives}..{self.max_positives} "
                                "positive labels.")
            prep = self._fit_prep(tr, train_rows)
            train = self._finish(self._store(tr, train_rows), prep)
            zsl_info, gzsl_info = self.h5["zsl_test"], self.h5["gzsl_test"]
            eval_zsl = self._finish(self._store(zsl_info, np.arange(zsl_info.num_rows)), prep)
            eval_gzsl = self._finish(self._store(gzsl_info, np.arange(gzsl_info.num_rows)), prep)
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
            prep = self._fit_prep(tr, train_rows)
            train = self._finish(self._store(tr, train_rows, seen), prep)
            val_rows = np.arange(tr.num_rows - n_val, tr.num_rows)
            eval_zsl = self._finish(self._store(tr, val_rows, unseen), prep)
            eval_gzsl = self._finish(self._store(tr, val_rows, np.arange(s)), prep)
            train_cols, zsl_cols, gzsl_cols = seen, unseen, np.arange(s)
        return self._split(
            name, [(len(eval_zsl), len(zsl_cols)), (len(eval_gzsl), len(gzsl_cols))],
            class_embeddings=torch.as_tensor(self.space.embeddings), seen_classes=seen, unseen_classes=unseen,
            train=train, train_cols=train_cols, eval_zsl=eval_zsl, eval_zsl_cols=zsl_cols, eval_gzsl=eval_gzsl,
            eval_gzsl_cols=gzsl_cols, class_names=self.space.seen_names + self.space.unseen_names)


class StandardMultiLabelBenchmark(StandardProtocol, MultiLabelBenchmark):
    """``data.mode=standard`` (Gupta et al. Table 4; protocol: :mod:`.multilabel_standard`) on feature vectors:
    the training file is ``files.train_standard`` (``features`` + ``standard_labels_key``, NUS-WIDE:
    ``labels_81``), the test file the ZSL test file (labels over the U labels)."""

    def _check_files(self) -> None:
        base = {k: self.files[k] for k in (*self._label_space_files(), "zsl_test")}
        missing_files(self.name, self.root, base, self.layout, self.source)
        missing_files(self.name, self.root, {"train_standard": self.files["train_standard"]},
                      STANDARD_LAYOUT, STANDARD_SOURCE,
                      "data.mode=standard (Gupta et al. Table 4) needs the training labels of the labels it "
                      "scores (NUS-WIDE: the 81 concepts); the released files do not have them.")

    def _standard_files(self, s: int, u: int) -> tuple[H5Info, H5Info]:
        tr = self._coded(inspect_standard_train(self.root / self.files["train_standard"], u, self.standard_labels_key))
        te = self._coded(inspect_h5(self.root / self.files["zsl_test"], u, "test file (labels over the same U labels)"))
        return tr, te
