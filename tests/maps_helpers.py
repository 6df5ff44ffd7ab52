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


def write_label_space(root: Path, seed: int = 0) -> None:
    from zsl_lightning.data.synthetic_ml import pick_nuswide_labels, write_nuswide_label_files

    write_nuswide_label_files(root, pick_nuswide_labels(np.random.default_rng(seed), S, U))


def write_cached(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0, nan_test_row: int | None = None) -> Path:
    from zsl_lightning.data.feature_maps_format import FeatureMapsWriter

    rng = np.random.default_rng(seed)
    write_label_space(root, seed)
    for part, n, width in (("train", n_train, S), ("test", n_test, S + U)):
        maps = {28: rng.random((n, C28, 28, 28)), 14: rng.random((n, C, 14, 14)), 7: rng.random((n, C, 7, 7))}
        with FeatureMapsWriter(root / "maps" / f"{part}.h5", {28: C28, 14: C, 7: C}, width, backbone="test",
                               input_size=224) as w:
            w.append(maps, _labels(rng, n, width), [f"{part}{i}" for i in range(n)])
    if nan_test_row is not None:
        import h5py

        with h5py.File(root / "maps" / "test.h5", "r+") as f:
            f["maps_14"][nan_test_row, 0, 0, 0] = np.nan
    return root


def write_biam(root: Path, n_train: int = 10, n_test: int = 6, seed: int = 0) -> Path:
    import h5py

    rng = np.random.default_rng(seed)
    write_label_space(root, seed)
    (root / "features").mkdir(parents=True, exist_ok=True)
    for part, n, width in (("train", n_train, S), ("test", n_test, S + U)):
        y = _labels(rng, n, width)
        with h5py.File(root / "features" / f"nus_wide_{part}.h5", "w") as f:
            for i in range(n):
                f[f"{part}{i:03d}-features"] = rng.random((512, 196)).astype(np.float32)
                f[f"{part}{i:03d}-labels"] = y[i]
    return root


def write_images(root: Path, n_train: int = 10, n_test: int = 6, seed: int = 0) -> Path:
    from PIL import Image

    from zsl_lightning.data.image_list_format import write_image_list

    rng = np.random.default_rng(seed)
    write_label_space(root, seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for part, n, width in (("train", n_train, S), ("test", n_test, S + U)):
        names = [f"{part}{i}.jpg" for i in range(n)]
        for name in names:
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "images" / name)
        write_image_list(root / f"images_{part}.h5", names, _labels(rng, n, width))
    return root


def tiny_vgg_weights(path: Path, widths=TINY_WIDTHS) -> Path:
    import torch

    from zsl_lightning.nn.backbone import VGG19MultiScale

    torch.save(VGG19MultiScale(widths=widths).state_dict(), path)
    return path
