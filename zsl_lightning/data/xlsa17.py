"""The xlsa17 on-disk layout (Xian et al., "Zero-shot learning: the good, the bad and the ugly").

``<root>/<NAME>/res101.mat``
    ``features`` D×N (ResNet-101 pool5), ``labels`` N×1 with **1-based** class ids, ``image_files``.
``<root>/<NAME>/att_splits.mat``
    ``att`` d_a×C (columns L2-normalised), ``trainval_loc``, ``train_loc``, ``val_loc``,
    ``test_seen_loc``, ``test_unseen_loc`` (**1-based** row indices into res101), ``allclasses_names``.

Everything is validated on load: each mistake gets its own message (missing files, transposed or
mismatched shapes, 0-based ids, NaN/inf, seen/unseen overlap, empty or leaking splits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsl_lightning.data.matfile import cellstr, read_mat
from zsl_lightning.errors import DataError, MissingFilesError

LAYOUT = """\
<root>/<NAME>/res101.mat      features (D x N, float), labels (N x 1, 1-based class ids)
<root>/<NAME>/att_splits.mat  att (d_a x C), trainval_loc, train_loc, val_loc,
                              test_seen_loc, test_unseen_loc (1-based indices into res101),
                              allclasses_names (optional)
<root>/<NAME>/sent_splits.mat (optional, CUB/FLO) att = 1024 x C CNN-RNN sentence embeddings"""

SOURCE = (
    "the 'xlsa17' archive of Xian et al., 'Zero-Shot Learning - The Good, the Bad and the Ugly' "
    "(https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/research/zero-shot-learning/"
    "zero-shot-learning-the-good-the-bad-and-the-ugly); FLO and CUB sentence embeddings come with the "
    "f-CLSWGAN data release (Xian et al., CVPR 2018). Unpack so that <root>/<NAME>/res101.mat exists, and "
    "pass data.root=<root> (the default root is $ZSL_DATA_DIR/xlsa17, else ./data/xlsa17)."
)

SPLIT_KEYS = ("trainval_loc", "train_loc", "val_loc", "test_seen_loc", "test_unseen_loc")


@dataclass
class XLSA17Raw:
    """A validated xlsa17 dataset in memory (0-based everywhere)."""

    name: str
    features: np.ndarray  # N x D float32
    labels: np.ndarray  # N int64, 0-based class ids
    embeddings: np.ndarray  # C x A float32 (one row per class)
    locs: dict[str, np.ndarray]  # 0-based row indices; train_loc/val_loc may be absent
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return self.embeddings.shape[0]


def expected_files(root: Path, name: str, embedding_file: str | None) -> list[Path]:
    d = Path(root) / name
    files = [d / "res101.mat", d / "att_splits.mat"]
    if embedding_file and embedding_file != "att_splits.mat":
        files.append(d / embedding_file)
    return files


def load_xlsa17(
    root: str | Path,
    name: str,
    features_file: str = "res101.mat",
    splits_file: str = "att_splits.mat",
    embedding_file: str | None = None,
    embedding_key: str = "att",
) -> XLSA17Raw:
    """Load and validate one dataset in the xlsa17 layout."""
    root = Path(root).expanduser()
    d = root / name
    emb_file = embedding_file or splits_file
    needed = [d / features_file, d / splits_file] + ([d / emb_file] if emb_file != splits_file else [])
    missing = [p for p in needed if not p.is_file()]
    if missing:
        hint = ""
        if not root.exists():
            hint = f"The data root '{root}' does not exist."
        elif not d.exists():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())[:20]
            hint = f"'{root}' has no folder '{name}' (it has: {present or 'nothing'})."
        raise MissingFilesError(name, missing, LAYOUT, SOURCE, hint)

    res = read_mat(d / features_file, ["features", "labels"])
    spl = read_mat(d / splits_file, ["trainval_loc", "test_seen_loc", "test_unseen_loc"],
                   optional=("train_loc", "val_loc", "allclasses_names", embedding_key))
    if emb_file == splits_file:
        if embedding_key not in spl:
            raise DataError(f"'{d / splits_file}' has no class-embedding variable '{embedding_key}'.")
        emb = spl[embedding_key]
    else:
        emb = read_mat(d / emb_file, [embedding_key])[embedding_key]

    labels = np.asarray(res["labels"]).astype(np.float64).ravel()
    features = _check_features(np.asarray(res["features"]), len(labels), d / features_file)
    labels = _check_labels(labels, d / features_file)
    num_classes = int(labels.max()) + 1
    embeddings = _check_embeddings(np.asarray(emb), num_classes, d / emb_file, embedding_key,
                                   labels, d / features_file)
    num_classes = embeddings.shape[0]

    locs = {}
    for key in SPLIT_KEYS:
        if key in spl:
            locs[key] = _check_loc(spl[key], key, len(labels), d / splits_file)
    _check_splits(locs, labels, d / splits_file)

    names = cellstr(spl.get("allclasses_names"))
    if len(names) != num_classes:
        names = [f"class_{i:03d}" for i in range(num_classes)]
    return XLSA17Raw(name, features, labels, embeddings, locs, names)


def _check_features(features: np.ndarray, n_labels: int, path: Path) -> np.ndarray:
    if features.ndim != 2:
        raise DataError(f"'{path}': 'features' must be a 2-D matrix (D x N), got shape {features.shape}.")
    if features.shape[1] != n_labels:
        if features.shape[0] == n_labels:
            raise DataError(
                f"'{path}': 'features' has shape {features.shape}, which looks transposed: the xlsa17 "
                f"layout stores features as D x N (one column per image) and 'labels' has N={n_labels}. "
                "Save features.T instead."
            )
        raise DataError(
            f"'{path}': 'features' has shape {features.shape} but 'labels' has {n_labels} entries; "
            "expected D x N with N = number of labels."
        )
    if not np.issubdtype(features.dtype, np.number):
        raise DataError(f"'{path}': 'features' is not numeric (dtype {features.dtype}).")
    x = np.ascontiguousarray(features.T, dtype=np.float32)
    _check_finite(x, f"'{path}': 'features'")
    return x


def _check_finite(x: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(
            f"{what} contains {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s) "
            f"(first rows, 0-based: {rows[:5].tolist()}). Re-extract or drop those samples."
        )


def _check_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.size == 0:
        raise DataError(f"'{path}': 'labels' is empty.")
    if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
        raise DataError(f"'{path}': 'labels' must be integer class ids.")
    if labels.min() == 0:
        raise DataError(
            f"'{path}': 'labels' contains 0: xlsa17 class ids are 1-based (1..C). If your ids are "
            "0-based, add 1 before saving."
        )
    if labels.min() < 0:
        raise DataError(f"'{path}': 'labels' contains negative class ids.")
    return labels.astype(np.int64) - 1


def _check_embeddings(emb: np.ndarray, num_classes: int, path: Path, key: str, labels: np.ndarray,
                      labels_path: Path) -> np.ndarray:
    if emb.ndim != 2:
        raise DataError(f"'{path}': '{key}' must be a 2-D matrix (d_a x C), got shape {emb.shape}.")
    if emb.shape[1] < num_classes:
        if emb.shape[0] >= num_classes:
            raise DataError(
                f"'{path}': '{key}' has shape {emb.shape}, which looks transposed: the xlsa17 layout "
                f"stores class embeddings as d_a x C (one column per class); the labels use {num_classes} classes."
            )
        above = np.unique(labels[labels >= emb.shape[1]]) + 1
        raise DataError(
            f"'{labels_path}': 'labels' uses class ids up to {num_classes}, but '{path}': '{key}' has only "
            f"{emb.shape[1]} columns (classes): {int((labels >= emb.shape[1]).sum())} image label(s) are above C = "
            f"{emb.shape[1]} (1-based ids {above[:10].tolist()}). Check the labels of {labels_path.name} (1-based, "
            f"1..C) — or, if they are right, whether {path.name}'s '{key}' lacks columns."
        )
    e = np.ascontiguousarray(emb.T, dtype=np.float32)
    _check_finite(e, f"'{path}': '{key}'")
    return e


def _check_loc(loc: np.ndarray, key: str, n: int, path: Path) -> np.ndarray:
    loc = np.asarray(loc, dtype=np.float64).ravel()
    if loc.size == 0:
        raise DataError(f"'{path}': split '{key}' is empty.")
    if not np.all(loc == np.round(loc)):
        raise DataError(f"'{path}': '{key}' must hold integer row indices.")
    if loc.min() == 0:
        raise DataError(
            f"'{path}': '{key}' contains index 0: xlsa17 locations are 1-based row indices into "
            "res101.mat (1..N). If you wrote 0-based indices, add 1 before saving."
        )
    if loc.min() < 0 or loc.max() > n:
        raise DataError(f"'{path}': '{key}' has indices outside 1..{n} (min {int(loc.min())}, max {int(loc.max())}).")
    loc = loc.astype(np.int64) - 1
    if len(np.unique(loc)) != len(loc):
        raise DataError(f"'{path}': '{key}' lists some images more than once.")
    return loc


def _check_splits(locs: dict[str, np.ndarray], labels: np.ndarray, path: Path) -> None:
    tv, ts, tu = locs["trainval_loc"], locs["test_seen_loc"], locs["test_unseen_loc"]
    leak = np.intersect1d(tv, ts)
    if leak.size:
        raise DataError(f"'{path}': {leak.size} image(s) are in both trainval_loc and test_seen_loc.")
    leak = np.intersect1d(np.concatenate([tv, ts]), tu)
    if leak.size:
        raise DataError(f"'{path}': {leak.size} image(s) of test_unseen_loc are also in trainval/test_seen.")
    seen, unseen = np.unique(labels[tv]), np.unique(labels[tu])
    overlap = np.intersect1d(seen, unseen)
    if overlap.size:
        raise DataError(
            f"'{path}': {overlap.size} class(es) appear both in trainval (seen) and test_unseen (unseen): "
            f"1-based ids {(overlap + 1)[:10].tolist()}. Seen and unseen classes must be disjoint."
        )
    extra = np.setdiff1d(np.unique(labels[ts]), seen)
    if extra.size:
        raise DataError(
            f"'{path}': test_seen_loc contains {extra.size} class(es) with no training images "
            f"(1-based ids {(extra + 1)[:10].tolist()})."
        )
    if "train_loc" in locs and "val_loc" in locs:
        tr, va = locs["train_loc"], locs["val_loc"]
        if np.setdiff1d(np.concatenate([tr, va]), tv).size:
            raise DataError(f"'{path}': train_loc/val_loc contain images outside trainval_loc.")
