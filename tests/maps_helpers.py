"""Tiny NUS-WIDE-style feature-map benchmarks in each on-disk layout (cached maps, BiAM / LESA, images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

S, U = 6, 3  # seen / unseen labels of the tiny label space
C28, C = 4, 8  # channels of the tiny cached maps (28 x 28; 14 x 14 and 7 x 7)
TINY_WIDTHS = [4, 4, 4, 4, 4]


def _labels(rng, n: int, width: int) -> np.ndarray:
    y = np.where(rng.random((n, width)) < 0.35, 1, -1).astype(np.int8)
    y[np.arange(n), rng.integers(0, min(width, S), n)] = 1  # at least one seen positive
    return y


def standard_train_labels(n: int) -> np.ndarray:
    """``labels_81`` of a tiny training file (N x U): row i is positive on unseen label ``i % U`` only, except
    every row ``i % 4 == 3``, which has no positive (data.mode=standard drops it)."""
    y = -np.ones((n, U), np.int8)
    rows = np.arange(n)[np.arange(n) % 4 != 3]
    y[rows, rows % U] = 1
    return y


def standard_test_unseen(n: int) -> np.ndarray:
    """The unseen columns of a tiny test file written with ``standard=True`` (M x U): row i is positive on
    ``(i + 1) % U`` only, except every row ``i % 3 == 0``, which has no unseen positive (dropped in standard mode)."""
    y = -np.ones((n, U), np.int8)
    rows = np.arange(n)[np.arange(n) % 3 != 0]
    y[rows, (rows + 1) % U] = 1
    return y


def _standard(part: str, n: int, y: np.ndarray, standard: bool) -> dict:
    """With ``standard``: the test labels' unseen columns set to :func:`standard_test_unseen` (in place) and, for
    the training file, the extra dataset ``{"labels_81": standard_train_labels}``; else nothing changes."""
    if not standard:
        return {}
    if part == "test":
        y[:, S:] = standard_test_unseen(n)
        return {}
    return {"labels_81": standard_train_labels(n)}


def write_label_space(root: Path, seed: int = 0) -> None:
    from zsl_lightning.data.synthetic_ml import pick_nuswide_labels, write_nuswide_label_files

    write_nuswide_label_files(root, pick_nuswide_labels(np.random.default_rng(seed), S, U))


def write_cached(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0, nan_test_row: int | None = None,
                 standard: bool = False) -> Path:
    """``standard``: also the training file's ``labels_81`` and fixed unseen test columns (:func:`_standard`)."""
    from zsl_lightning.data.feature_maps_format import FeatureMapsWriter

    rng = np.random.default_rng(seed)
    write_label_space(root, seed)
    for part, n, width in (("train", n_train, S), ("test", n_test, S + U)):
        maps = {28: rng.random((n, C28, 28, 28)), 14: rng.random((n, C, 14, 14)), 7: rng.random((n, C, 7, 7))}
        y = _labels(rng, n, width)
        extra = _standard(part, n, y, standard)
        with FeatureMapsWriter(root / "maps" / f"{part}.h5", {28: C28, 14: C, 7: C}, width, backbone="test",
                               input_size=224, extra_labels={k: v.shape[1] for k, v in extra.items()}) as w:
            w.append(maps, y, [f"{part}{i}" for i in range(n)], extra)
    if nan_test_row is not None:
        import h5py

        with h5py.File(root / "maps" / "test.h5", "r+") as f:
            f["maps_14"][nan_test_row, 0, 0, 0] = np.nan
    return root


def write_biam(root: Path, n_train: int = 10, n_test: int = 6, seed: int = 0, standard: bool = False) -> Path:
    """``standard``: also every training image's ``<img>-labels_81`` and fixed unseen test columns."""
    import h5py

    rng = np.random.default_rng(seed)
    write_label_space(root, seed)
    (root / "features").mkdir(parents=True, exist_ok=True)
    for part, n, width in (("train", n_train, S), ("test", n_test, S + U)):
        y = _labels(rng, n, width)
        extra = _standard(part, n, y, standard)
        with h5py.File(root / "features" / f"nus_wide_{part}.h5", "w") as f:
            for i in range(n):
                f[f"{part}{i:03d}-features"] = rng.random((512, 196)).astype(np.float32)
                f[f"{part}{i:03d}-labels"] = y[i]
                for key, v in extra.items():
                    f[f"{part}{i:03d}-{key}"] = v[i]
    return root


def write_images(root: Path, n_train: int = 10, n_test: int = 6, seed: int = 0, standard: bool = False) -> Path:
    from PIL import Image

    from zsl_lightning.data.image_list_format import write_image_list

    rng = np.random.default_rng(seed)
    write_label_space(root, seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for part, n, width in (("train", n_train, S), ("test", n_test, S + U)):
        names = [f"{part}{i}.jpg" for i in range(n)]
        for name in names:
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "images" / name)
        y = _labels(rng, n, width)
        write_image_list(root / f"images_{part}.h5", names, y, extra_labels=_standard(part, n, y, standard))
    return root


def tiny_vgg_weights(path: Path, widths=TINY_WIDTHS) -> Path:
    import torch

    from zsl_lightning.nn.backbone import VGG19MultiScale

    torch.save(VGG19MultiScale(widths=widths).state_dict(), path)
    return path
