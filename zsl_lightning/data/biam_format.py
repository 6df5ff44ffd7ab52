"""The BiAM / LESA NUS-WIDE conv5_4 feature-map layout (single scale, 14 x 14 x 512): GBE-MLZSL's fallback.

**BiAM / LESA layout** (NUS-WIDE, single scale): ``nus_wide_train.h5`` / ``nus_wide_test.h5`` with per-image
keys ``<img>-features`` (512 x 196 float32 = VGG19 conv5_4 after ReLU, 14 x 14 flattened), ``<img>-labels``
(925 train / 1006 test, seen then unseen), ``<img>-labels_81``. Image order: the released name pickle
(``img_names.pkl`` / ``test_img_names.pkl``, a dict ``{"img_names": [...]}`` in extraction order, which is
what BiAM indexes and splits 80 / 20); without it, the HDF5 file's own key order (alphabetical), which gives
a different train / validation split than BiAM's.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from zsl_lightning.data.feature_maps_format import train_val_ranges
from zsl_lightning.data.h5_handle import LazyH5
from zsl_lightning.data.multilabel_format import check_label_values, missing_files
from zsl_lightning.errors import DataError

BIAM_FILES = {"train": "features/nus_wide_train.h5", "test": "features/nus_wide_test.h5",
              "train_names": "img_names.pkl", "test_names": "test_img_names.pkl"}
BIAM_LAYOUT = """\
<root>/features/nus_wide_train.h5   per image: <img>-features 512 x 196 float (VGG19 conv5_4, ReLU, 14 x 14),
                                    <img>-labels 925 (+1/-1/0), <img>-labels_81 81
<root>/features/nus_wide_test.h5    the same keys, <img>-labels 1006 (925 seen then 81 unseen)
<root>/img_names.pkl, <root>/test_img_names.pkl   optional: pickle {"img_names": [...]} = the image order"""
BIAM_SOURCE = ("the NUS-WIDE conv5_4 features released with BiAM (github.com/akshitac8/BiAM, README: "
               "'nus_wide_train.h5' / 'nus_wide_test.h5', Google-Drive links) and LESA "
               "(github.com/hbdat/cvpr20_LESA); the name pickles ship in BiAM's datasets/NUS-WIDE folder")
BIAM_CHANNELS, BIAM_SIDE = 512, 14
BIAM_LABELS = {"train": 925, "test": 1006}


def read_image_names(path: Path | str) -> list[str]:
    """A BiAM name list: a pickle of ``{"img_names": [...]}`` or of a plain list, or a text file, one per line."""
    path = Path(path)
    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as f:
                obj = pickle.load(f)
            names = obj["img_names"] if isinstance(obj, dict) else obj
            return [str(n) for n in names]
        return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except Exception as e:
        raise DataError(f"Could not read the image-name list '{path}' (a pickle {{'img_names': [...]}} or a text "
                        f"file, one name per line): {e}") from None


class BiamMapsFile(LazyH5):
    """One BiAM / LESA per-image HDF5 file: 14 x 14 x 512 maps and labels by image index.

    ``names_file`` fixes the order (BiAM's pickles); without it the order is the file's key order (HDF5 lists
    keys alphabetically). Shapes are checked on the first image at open time and on every image read.
    ``labels_key``: the per-image label key read (``labels``, or ``labels_81`` for data.mode=standard), with
    ``num_labels`` values; ``missing_hint`` is added to the error when an image lacks it.
    """

    def __init__(self, path: Path | str, num_labels: int, names_file: Path | str | None = None,
                 what: str = "BiAM / LESA NUS-WIDE features", labels_key: str = "labels", missing_hint: str = ""):
        import h5py

        self.path, self.num_labels, self.what = Path(path), int(num_labels), what
        self.labels_key, self.missing_hint = str(labels_key), str(missing_hint)
        files = {"h5": self.path.name}
        if names_file is not None:
            files["names"] = os.path.relpath(names_file, self.path.parent)
        missing_files(what, self.path.parent, files, BIAM_LAYOUT, BIAM_SOURCE)
        try:
            with h5py.File(self.path, "r") as f:
                if names_file is None:
                    self.names = [k[: -len("-features")] for k in f.keys() if k.endswith("-features")]
                    self.order_source = "HDF5 key order (alphabetical)"
                else:
                    self.names = read_image_names(names_file)
                    self.order_source = str(names_file)
                if not self.names:
                    raise DataError(f"'{self.path}' ({what}) holds no '<img>-features' keys; found "
                                    f"{list(f.keys())[:5]}. Layout:\n{BIAM_LAYOUT}")
                self._check(f, self.names[0])
        except OSError as e:
            raise DataError(f"Could not read '{self.path}' ({what}) as HDF5: {e}. It comes from {BIAM_SOURCE}.") from None

    def __len__(self) -> int:
        return len(self.names)

    def _check(self, f, name: str) -> None:
        for key, shapes in ((f"{name}-features", {(BIAM_CHANNELS, BIAM_SIDE ** 2), (BIAM_CHANNELS, BIAM_SIDE, BIAM_SIDE)}),
                            (f"{name}-{self.labels_key}", {(self.num_labels,)})):
            if key not in f:
                hint = f" {self.missing_hint}" if self.missing_hint and key.endswith(self.labels_key) else ""
                raise DataError(f"'{self.path}' ({self.what}) has no key '{key}' (image '{name}' from "
                                f"{self.order_source}).{hint} Layout:\n{BIAM_LAYOUT}")
            shape = f[key].shape
            if shape not in shapes:
                hint = " (transposed? BiAM stores channels first, 512 x 196)" if shape == (BIAM_SIDE ** 2, BIAM_CHANNELS) else ""
                raise DataError(f"'{self.path}': '{key}' has shape {shape}; expected one of {sorted(shapes)}{hint}.")

    def read(self, indices: Sequence[int], labels_key: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``indices`` → maps (B, 512, 14, 14) float32 and labels (B, L) int8 (``labels_key``: the file's
        own, L = ``num_labels``; another "labels_81": L = 81). NaN/inf and bad label values raise DataError
        naming file and key."""
        f = self._file()
        idx = [int(i) for i in indices]
        labels_key = labels_key or self.labels_key
        width = self.num_labels if labels_key == self.labels_key else (81 if labels_key == "labels_81" else
                                                                       self.num_labels)
        x = np.empty((len(idx), BIAM_CHANNELS, BIAM_SIDE, BIAM_SIDE), np.float32)
        y = np.empty((len(idx), width), np.int8)
        for b, i in enumerate(idx):
            name = self.names[i]
            self._check(f, name)
            key = f"{name}-{labels_key}"
            if key not in f:
                raise DataError(f"'{self.path}' has no key '{key}' (image {i} '{name}'). Layout:\n{BIAM_LAYOUT}")
            lab = np.asarray(f[key]).reshape(-1)
            if lab.shape != (width,):
                raise DataError(f"'{self.path}': '{key}' has {lab.shape[0]} values; expected {width}.")
            check_label_values(lab, f"{self.path}:{key}")
            feat = np.asarray(f[f"{name}-features"], np.float32).reshape(BIAM_CHANNELS, BIAM_SIDE, BIAM_SIDE)
            if not np.isfinite(feat).all():
                raise DataError(f"'{self.path}': '{name}-features' (image {i}) contains NaN/inf.")
            x[b], y[b] = feat, lab
        return torch.from_numpy(x), torch.from_numpy(y)



def open_biam_nuswide(root: Path | str, split: str) -> tuple[BiamMapsFile, range]:
    """``split`` in train / val / trainval / test → (file, image indices). Train / val: the first 80% / last 20%
    of the training file's image order (BiAM's split); the name pickle is used when present."""
    root = Path(root)
    part = "test" if split == "test" else "train"
    if split not in ("train", "val", "trainval", "test"):
        raise DataError(f"BiAM layout: unknown split '{split}' (train, val, trainval or test).")
    names = root / BIAM_FILES[f"{part}_names"]
    if not (root / BIAM_FILES[part]).is_file():
        missing_files("NUS-WIDE (BiAM / LESA conv5_4 features)", root, {part: BIAM_FILES[part]}, BIAM_LAYOUT,
                      BIAM_SOURCE, hint=f"data.root is '{root}'.")
    store = BiamMapsFile(root / BIAM_FILES[part], BIAM_LABELS[part], names if names.is_file() else None)
    if split in ("test", "trainval"):
        return store, range(len(store))
    tr, va = train_val_ranges(len(store))
    return store, tr if split == "train" else va
