"""Raw images + labels for the images → frozen-backbone path (GBE-MLZSL) and for caching feature maps.

Layout (docs/data.md, "Multi-label feature maps")::

    <root>/images/...            JPEG / PNG files, any sub-folders
    <root>/<list>.h5             image_paths  N strings, relative to <root>/images
                                 labels       N x L int8, +1 positive, -1 negative, 0 unknown
                                 label_names  L strings (optional; checked against the label space if given)
                                 labels_81    optional N x U int8: the training labels of data.mode=standard
                                              (NUS-WIDE: the 81 concepts; name: data.standard_labels_key)

Decoding: PIL, converted to RGB, resized to 224 x 224 with bilinear interpolation and **no crop** (the
aspect ratio is not kept) — the transform BiAM / LESA used to extract their NUS-WIDE features
(``Resize((224, 224))``, no centre crop). ``read`` returns uint8 (B, 3, 224, 224); normalise with
``imagenet_normalize`` before a VGG19.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from zsl_lightning.data.multilabel_format import check_label_values
from zsl_lightning.errors import DataError, MissingFilesError

IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMAGE_LIST_LAYOUT = """\
<root>/images/...        JPEG / PNG images
<root>/<list>.h5         image_paths N strings (relative to <root>/images), labels N x L int8 (+1/-1/0),
                         label_names L strings (optional); data.mode=standard: labels_81 N x U int8"""
IMAGE_LIST_SOURCE = ("your image folder (NUS-WIDE: the Flickr images from the NUS-WIDE site, "
                     "lms.comp.nus.edu.sg/research/NUS-WIDE.htm); write the list with write_image_list")


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float32 ImageNet-normalised (the torchvision VGG19 weights' preprocessing)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def write_image_list(path: Path | str, image_paths: Sequence[str], labels: np.ndarray,
                     label_names: Sequence[str] | None = None, extra_labels: dict | None = None) -> Path:
    """Write the list file (labels checked to be +1 / -1 / 0, one row per image). ``extra_labels``: further
    label datasets by name, e.g. ``{"labels_81": N x 81}`` (the training labels of data.mode=standard)."""
    import h5py

    path, labels = Path(path), np.asarray(labels)
    if labels.ndim != 2 or len(labels) != len(image_paths):
        raise DataError(f"write_image_list '{path}': labels {labels.shape} for {len(image_paths)} images.")
    check_label_values(labels, path)
    extra = {str(k): np.asarray(v) for k, v in dict(extra_labels or {}).items()}
    for key, y in extra.items():
        if y.ndim != 2 or len(y) != len(image_paths):
            raise DataError(f"write_image_list '{path}': '{key}' {y.shape} for {len(image_paths)} images.")
        check_label_values(y, f"{path}:{key}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("image_paths", data=np.array([str(p) for p in image_paths], object),
                         dtype=h5py.string_dtype())
        f.create_dataset("labels", data=labels.astype(np.int8))
        for key, y in extra.items():
            f.create_dataset(key, data=y.astype(np.int8))
        if label_names is not None:
            f.create_dataset("label_names", data=np.array([str(n) for n in label_names], object),
                             dtype=h5py.string_dtype())
    return path


def _str(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


class ImageList:
    """A list file plus its image folder (default ``<list's folder>/images``). Labels are read in full (int8:
    161k x 1,006 NUS-WIDE test labels are 163 MB); ``check_files`` stats every image once at open time.
    ``labels_key``: the label dataset read (``labels``, or e.g. ``labels_81`` in data.mode=standard;
    ``missing_hint`` is added to the error when it is absent)."""

    def __init__(self, list_file: Path | str, images_root: Path | str | None = None,
                 expected_labels: int | None = None, label_names: Sequence[str] | None = None,
                 check_files: bool = True, size: int = IMAGE_SIZE, labels_key: str = "labels",
                 missing_hint: str = ""):
        import h5py

        self.list_file = Path(list_file)
        self.images_root = Path(images_root) if images_root is not None else self.list_file.parent / "images"
        self.size = int(size)
        if not self.list_file.is_file():
            raise MissingFilesError("image list", [self.list_file], IMAGE_LIST_LAYOUT, IMAGE_LIST_SOURCE)
        try:
            with h5py.File(self.list_file, "r") as f:
                missing = [k for k in ("image_paths", "labels") if k not in f]
                if missing:
                    raise DataError(f"'{self.list_file}' (image list) has no dataset(s) {missing}; found "
                                    f"{sorted(f.keys())}. Layout:\n{IMAGE_LIST_LAYOUT}")
                if labels_key not in f:
                    raise DataError(f"'{self.list_file}' (image list) has no dataset '{labels_key}'; found "
                                    f"{sorted(f.keys())}. {missing_hint}".rstrip())
                self.paths = [_str(v) for v in f["image_paths"][()]]
                self.labels = np.asarray(f[labels_key][()])
                names = [_str(v) for v in f["label_names"][()]] if "label_names" in f else None
        except OSError as e:
            raise DataError(f"Could not read the image list '{self.list_file}' as HDF5: {e}") from None
        if self.labels.ndim != 2 or len(self.labels) != len(self.paths):
            raise DataError(f"'{self.list_file}': labels {self.labels.shape} for {len(self.paths)} image paths; "
                            "expected N x L, one row per path.")
        if expected_labels is not None and self.labels.shape[1] != expected_labels:
            raise DataError(f"'{self.list_file}': '{labels_key}' has {self.labels.shape[1]} columns, expected "
                            f"{expected_labels}.")
        check_label_values(self.labels, self.list_file)
        self.labels = self.labels.astype(np.int8)
        if label_names is not None and names is not None and list(label_names) != names:
            diff = next(i for i, (a, b) in enumerate(zip(names, label_names, strict=False)) if a != b) \
                if len(names) == len(label_names) else None
            raise DataError(f"'{self.list_file}': its label_names differ from the label space "
                            f"({len(names)} vs {len(label_names)} names" +
                            (f"; first difference at column {diff}: '{names[diff]}' vs '{label_names[diff]}'" if
                             diff is not None else "") + ").")
        if check_files:
            if not self.images_root.is_dir():
                raise MissingFilesError("image list", [self.images_root], IMAGE_LIST_LAYOUT, IMAGE_LIST_SOURCE,
                                        f"The image folder of '{self.list_file}' does not exist.")
            miss = [self.images_root / p for p in self.paths if not (self.images_root / p).is_file()]
            if miss:
                raise MissingFilesError("image list", miss[:20], IMAGE_LIST_LAYOUT, IMAGE_LIST_SOURCE,
                                        f"{len(miss)} of the {len(self.paths)} images listed in '{self.list_file}' "
                                        "are missing" + (" (the first 20 are shown)." if len(miss) > 20 else "."))

    def __len__(self) -> int:
        return len(self.paths)

    def load_image(self, i: int) -> torch.Tensor:
        """Image ``i`` → uint8 (3, size, size): RGB, bilinear resize to size x size, no crop."""
        from PIL import Image, UnidentifiedImageError

        p = self.images_root / self.paths[i]
        try:
            with Image.open(p) as im:
                im = im.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except FileNotFoundError:
            raise MissingFilesError("image list", [p], IMAGE_LIST_LAYOUT, IMAGE_LIST_SOURCE,
                                    f"Listed as row {i} of '{self.list_file}'.") from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"Could not decode image '{p}' (row {i} of '{self.list_file}'): {e}") from None
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def read(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``indices`` → uint8 (B, 3, size, size) and labels int8 (B, L)."""
        idx = [int(i) for i in indices]
        images = torch.stack([self.load_image(i) for i in idx]) if idx else torch.empty(0, 3, self.size, self.size,
                                                                                         dtype=torch.uint8)
        return images, torch.from_numpy(self.labels[idx])
