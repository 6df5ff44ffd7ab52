"""Multi-label feature-map benchmarks for GBE-MLZSL: ``data=synthetic_maps``, ``data=nuswide_maps``,
``data=openimages_maps`` (docs/data.md, "Multi-label feature maps"; docs/methods/gbe.md).

The label space (names, L2-normalised GloVe vectors, seen / unseen) is read exactly as for the vector
benchmarks (``label_space: nuswide`` = TagList1k / Concepts81 / the GloVe pickle; ``h5`` = embeddings.h5 for
Open Images); the features come from one of three sources (``data.source``), each a training file (labels
over the S seen columns) and a test file (labels over S + U columns, seen then unseen):

``cached``  ``maps/train.h5``, ``maps/test.h5``: cached multi-scale maps (``feature_maps_format``), scales
            ``data.scales`` (default 28, 14, 7), streamed in chunks; x = the packed maps (``maps_store``).
``biam``    ``features/nus_wide_train.h5``, ``features/nus_wide_test.h5`` (+ optional name pickles): the
            BiAM / LESA 14 x 14 x 512 conv5_4 maps. **Single scale**: ``data_info.single_scale`` is true and
            the reason is recorded in results.json; GBE then runs without ML-FEF and derives F^7 by pooling.
``images``  ``images_train.h5``, ``images_test.h5`` (image lists) and ``images/``: x = uint8 images; the
            method runs them through VGG19 (``data.backbone``: weights file, trainable).

Splits are those of :class:`~zsl_lightning.data.multilabel_benchmark.MultiLabelBenchmark`: ``test`` trains on
the training file's images with 1..max_positives seen positives and evaluates every test image (ZSL: the
test file's unseen columns; GZSL: all columns); ``dev`` holds out the last ``val_image_fraction`` of the
training rows and a seeded ``val_label_fraction`` of the seen labels (pseudo-unseen); the test file is not
read in dev. Maps are not rescaled (``preprocess`` is ``none``).

``data.mode=standard`` (Liu et al. Table IV; protocol: :mod:`.multilabel_standard`, shared with the vector
benchmarks): the U unseen labels (NUS-WIDE: the 81 concepts) are the only labels, all seen. Training labels come
from the training file's ``data.standard_labels_key`` (``labels_81``: a dataset N x U of the cached-maps file or
of the image list; BiAM / LESA: each image's ``<img>-labels_81``); test labels are the test file's U unseen
columns, on the test images with a positive among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zsl_lightning.data.multi_label import MultiLabelDataModule, StandardMode
from zsl_lightning.data.multilabel_benchmark import MultiLabelBenchmark
from zsl_lightning.data.multilabel_format import missing_files
from zsl_lightning.data.multilabel_standard import StandardProtocol
from zsl_lightning.data.preprocessing import identity
from zsl_lightning.errors import ConfigError, DataError, MissingFilesError

SOURCES = ("cached", "biam", "images")
MAPS_FILES = {
    "cached": {"train": "maps/train.h5", "test": "maps/test.h5"},
    "biam": {"train": "features/nus_wide_train.h5", "test": "features/nus_wide_test.h5"},
    "images": {"train": "images_train.h5", "test": "images_test.h5"},
}
BIAM_NAME_FILES = {"train": "img_names.pkl", "test": "test_img_names.pkl"}
SOURCE_LAYOUT = {
    "cached": "<root>/maps/train.h5 (labels N x S), <root>/maps/test.h5 (labels M x (S+U)): cached multi-scale maps "
              "(maps_28, maps_14, maps_7; scripts/cache_feature_maps.py)",
    "biam": "<root>/features/nus_wide_train.h5, <root>/features/nus_wide_test.h5: BiAM / LESA per-image "
            "<img>-features 512 x 196, <img>-labels (925 / 1006); optional <root>/img_names.pkl, test_img_names.pkl",
    "images": "<root>/images_train.h5, <root>/images_test.h5 (image_paths, labels N x S / M x (S+U)) and "
              "<root>/images/... (JPEG / PNG)",
}
SOURCE_ORIGIN = {
    "cached": "scripts/cache_feature_maps.py run on your images with the VGG19 weights (docs/data.md)",
    "biam": "BiAM (github.com/akshitac8/BiAM) / LESA (github.com/hbdat/cvpr20_LESA) NUS-WIDE conv5_4 features",
    "images": "the dataset's images (NUS-WIDE: lms.comp.nus.edu.sg/research/NUS-WIDE.htm) and lists written with "
              "zsl_lightning.data.image_list_format.write_image_list",
}
STANDARD_LABELS_FIX = {  # how to get data.mode=standard's training labels, per source ({key}: the dataset name)
    "cached": "data.mode=standard trains on the U scored labels (NUS-WIDE: the 81 concepts) and reads their training "
              "labels from the training maps file's '{key}' (N x U int8, +1/-1/0, Concepts81 order). Cache the maps "
              "from an image list that holds '{key}' (write_image_list(..., extra_labels={{'{key}': y}}); "
              "scripts/cache_feature_maps.py copies it), or set data.standard_labels_key to the dataset that has them.",
    "biam": "data.mode=standard reads each training image's '<img>-{key}' (its labels over the U scored labels; "
            "BiAM / LESA's released nus_wide_train.h5 has '<img>-labels_81'): use the released file, or set "
            "data.standard_labels_key.",
    "images": "data.mode=standard reads the training labels over the U scored labels (NUS-WIDE: the 81 concepts) "
              "from the image list's '{key}' (N x U int8, +1/-1/0): write the list with "
              "write_image_list(..., extra_labels={{'{key}': y}}), or set data.standard_labels_key.",
}
SINGLE_SCALE_REASON = ("data.source=biam: the BiAM / LESA files hold only VGG19 conv5_4 (14 x 14 x 512); ML-FEF's "
                       "28 x 28 and 7 x 7 branches are off and GEM reads a 2 x 2 max-pool of the 14 x 14 map")


class MapsBenchmark(MultiLabelBenchmark):
    """A feature-map benchmark (module docstring): ``source`` cached | biam | images, ``view`` maps | pooled."""

    def __init__(self, root: str, source: str = "cached", scales: list[int] = (28, 14, 7), view: str = "maps",
                 image_size: int = 224, backbone: dict | None = None, files: dict | None = None,
                 preprocess: str = "none", chunk_rows: int = 256, buffer_rows: int = 2048, **options):
        if source not in SOURCES:
            raise ConfigError(f"data.source must be one of {'|'.join(SOURCES)}, got '{source}'.")
        if view not in ("maps", "pooled"):
            raise ConfigError(f"data.view must be maps | pooled, got '{view}'.")
        if preprocess != "none":
            raise ConfigError("data.preprocess must be none for feature maps (GBE reads raw VGG19 activations).")
        super().__init__(root, preprocess=preprocess, chunk_rows=chunk_rows, buffer_rows=buffer_rows, **options)
        self.maps_source, self.view = source, view
        self.scales = tuple(int(s) for s in scales)
        self.image_size = int(image_size)
        self.backbone = {"weights": None, "widths": [64, 128, 256, 512, 512], "trainable": False, **dict(backbone or {})}
        self.files = {**self.files, **{f"{k}_{source}": v for k, v in MAPS_FILES[source].items()}, **dict(files or {})}
        self.readers: dict[str, Any] = {}

    # -------------------------------------------------------------------------------- files
    def _source_files(self) -> dict[str, str]:
        return {k: self.files[f"{k}_{self.maps_source}"] for k in ("train", "test")}

    def _check_files(self) -> None:
        label_files = {k: self.files[k] for k in self._label_space_files()}
        missing_files(self.name, self.root, {**label_files, **self._source_files()},
                      f"{self._label_layout()}\n{SOURCE_LAYOUT[self.maps_source]}", f"labels: {self._label_origin()}; "
                      f"features: {SOURCE_ORIGIN[self.maps_source]}")
        weights = self.backbone.get("weights")
        if self.maps_source == "images" and weights is not None and not Path(str(weights)).expanduser().is_file():
            from zsl_lightning.nn.backbone import WEIGHTS_FILE, WEIGHTS_SOURCE

            raise MissingFilesError("VGG19 backbone", [weights], f"<any folder>/{WEIGHTS_FILE}", WEIGHTS_SOURCE,
                                    "Copy the file to this machine and pass data.backbone.weights=/path/to/"
                                    f"{WEIGHTS_FILE} (nothing is downloaded at run time).")

    def _label_layout(self) -> str:
        """The label-space lines of the vector benchmark's layout (its feature files are not read here)."""
        lines = self.layout.splitlines()
        return "\n".join(lines[:3] if self.label_space_kind == "nuswide" else lines[-1:])

    def _label_origin(self) -> str:
        if self.label_space_kind == "nuswide":
            return self.source  # the NUS-WIDE tag lists and GloVe pickle (Generative_MLZSL / BiAM / LESA)
        return "scripts/convert_openimages.py (embeddings.h5: class names and GloVe vectors; docs/methods/multilabel.md)"

    def _reader(self, part: str, num_labels: int, labels_key: str = "labels", missing_hint: str = ""):
        """The reader of the ``part`` (train | test) file, its labels read from ``labels_key`` (``num_labels``
        columns; ``missing_hint`` completes the error when the file lacks them)."""
        from zsl_lightning.data.maps_store import BiamReader, CachedMapsReader, ImageReader, PooledReader

        path = self.root / self._source_files()[part]
        what = f"{self.name} {part} ({self.maps_source})"
        kw = {"labels_key": labels_key, "missing_hint": missing_hint}
        if self.maps_source == "cached":
            reader = CachedMapsReader(path, num_labels, self.scales, what, **kw)
        elif self.maps_source == "biam":
            names = self.root / self.files.get(f"{part}_names", BIAM_NAME_FILES[part])
            reader = BiamReader(path, num_labels, names if names.is_file() else None, what, **kw)
        else:
            reader = ImageReader(path, self.root / self.files.get("images", "images"), num_labels, self.image_size,
                                 **kw)
        return PooledReader(reader) if self.view == "pooled" else reader

    def _inspect(self, s: int, u: int) -> None:
        from zsl_lightning.data.maps_store import ColumnView

        train, test = self._reader("train", s), self._reader("test", s + u)
        if train.feature_shape != test.feature_shape:
            raise DataError(f"{self.name}: the training and test maps differ in shape: {train.feature_shape} "
                            f"vs {test.feature_shape}.")
        self.readers = {"train": train, "test": test}
        self.h5 = {"train": train, "zsl_test": ColumnView(test, np.arange(s, s + u)), "gzsl_test": test}

    # -------------------------------------------------------------------------------- what differs from vectors
    def _store(self, info, rows: np.ndarray, cols: np.ndarray | None = None):
        from zsl_lightning.data.maps_store import MapsStore

        return MapsStore(info, rows, cols)

    def _fit_prep(self, info, train_rows: np.ndarray):
        return identity

    @property
    def single_scale(self) -> bool:
        return self.maps_source == "biam"

    def _mode_info(self) -> dict[str, Any]:
        reader = self.readers["train"]
        kind = "images" if self.maps_source == "images" else ("pooled" if self.view == "pooled" else "maps")
        layout = getattr(reader, "reader", reader).layout
        out = {"source": self.maps_source, "input": kind, "maps_layout": [[int(s), int(c)] for s, c in layout],
               "single_scale": self.single_scale}
        if self.single_scale:
            out["single_scale_reason"] = SINGLE_SCALE_REASON
        if self.maps_source == "images":
            out["backbone"] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in self.backbone.items()}
            out["backbone"]["weights"] = None if self.backbone["weights"] is None else str(self.backbone["weights"])
        return out


class StandardMapsBenchmark(StandardProtocol, MapsBenchmark):
    """``data.mode=standard`` on feature maps (Liu et al. Table IV): the training file's ``standard_labels_key``
    labels (N x U) and the test file's U unseen columns (module docstring)."""

    def _standard_files(self, s: int, u: int):
        from zsl_lightning.data.maps_store import ColumnView

        key = self.standard_labels_key
        hint = STANDARD_LABELS_FIX[self.maps_source].format(key=key)
        train = self._reader("train", u, key, hint)
        test = self._reader("test", s + u)
        self.readers = {"train": train, "test": test}
        return train, ColumnView(test, np.arange(s, s + u))


class MapsDataModule(MultiLabelDataModule):
    """``data=nuswide_maps`` / ``openimages_maps``: a :class:`MapsBenchmark` (options in its docstring);
    ``data.mode=standard`` builds :class:`StandardMapsDataModule`."""

    benchmark_class = MapsBenchmark

    @property
    def notes(self) -> dict[str, Any]:
        """What results.json records about the data beyond its name (the single-scale fallback)."""
        info = self.info
        return {k: info[k] for k in ("source", "input", "single_scale", "single_scale_reason") if k in info}


class SyntheticMapsDataModule(MapsDataModule):
    """``data=synthetic_maps``: the embedded benchmark of :mod:`.synthetic_maps`, generated on first use
    (cached by its parameters) and read as cached maps."""

    def __init__(self, cache_dir: str, generator: dict | None = None, **kwargs):
        self.cache_dir, self.generator_kwargs = cache_dir, dict(generator or {})
        super().__init__(root=str(cache_dir), name="synthetic_maps", label_space="nuswide", source="cached", **kwargs)

    def _load(self) -> None:
        from zsl_lightning.data.synthetic_maps import cached_synthetic_maps

        self.benchmark.root = cached_synthetic_maps(self.cache_dir, self.generator_kwargs)
        super()._load()


class StandardMapsDataModule(StandardMode, MapsDataModule):
    """``data=nuswide_maps data.mode=standard`` (Liu et al. Table IV): a :class:`StandardMapsBenchmark`."""

    benchmark_class = StandardMapsBenchmark


class StandardSyntheticMapsDataModule(StandardMode, SyntheticMapsDataModule):
    """``data=synthetic_maps data.mode=standard``: the embedded benchmark's unseen labels as the only labels,
    trained from ``maps/train.h5``'s ``labels_81`` (the training images' unseen labels)."""

    benchmark_class = StandardMapsBenchmark


MapsDataModule.standard_class = StandardMapsDataModule
SyntheticMapsDataModule.standard_class = StandardSyntheticMapsDataModule
