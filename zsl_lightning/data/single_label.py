"""Single-label benchmarks in the xlsa17 layout (CUB, AWA1, AWA2, SUN, APY, FLO, or any directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zsl_lightning.data.base import ZSLDataModule
from zsl_lightning.data.split import FeatureSplit, make_split, normalize_embeddings, stratified_holdout
from zsl_lightning.data.xlsa17 import XLSA17Raw, load_xlsa17
from zsl_lightning.errors import ConfigError, DataError


class XLSA17DataModule(ZSLDataModule):
    """Any dataset in the xlsa17 layout: ``<root>/<name>/{res101.mat, att_splits.mat}``.

    Args:
        root: folder holding ``<name>/``.
        name: dataset folder name (``CUB``, ``AWA2``, ...).
        embedding_file / embedding_key: where the class embeddings come from (default: ``att`` of
            ``att_splits.mat``; ``sent_splits.mat`` for the CUB/FLO CNN-RNN sentence embeddings).
        preprocess: ``minmax`` (reference), ``standard`` (LisGAN's other option), ``l2`` or ``none`` — fitted on
            each split's training set.
        embedding_norm: ``none`` (use as stored; xlsa17 ``att`` columns are already L2-normalised) or ``l2``.
        val_split: ``xlsa17`` uses the benchmark's own class-disjoint ``train_loc``/``val_loc`` for the
            dev split; ``random`` holds out ``val_class_fraction`` of the seen classes instead.
        val_seen_fraction: share of each training class's images held out as validation-seen images.
    """

    def __init__(
        self,
        root: str,
        name: str,
        features_file: str = "res101.mat",
        splits_file: str = "att_splits.mat",
        embedding_file: str | None = None,
        embedding_key: str = "att",
        preprocess: str = "minmax",
        embedding_norm: str = "none",
        val_split: str = "xlsa17",
        val_class_fraction: float = 0.2,
        val_seen_fraction: float = 0.2,
        seed: int = 0,
    ):
        super().__init__(name=name, seed=seed)
        self.root = Path(str(root)).expanduser()
        self.features_file, self.splits_file = features_file, splits_file
        self.embedding_file, self.embedding_key = embedding_file, embedding_key
        self.preprocess, self.embedding_norm = preprocess, embedding_norm
        if val_split not in ("xlsa17", "random"):
            raise ConfigError(f"data.val_split must be xlsa17 | random, got '{val_split}'.")
        if not 0.0 < val_seen_fraction < 1.0 or not 0.0 < val_class_fraction < 1.0:
            raise ConfigError("data.val_seen_fraction and data.val_class_fraction must be in (0, 1).")
        self.val_split, self.val_class_fraction, self.val_seen_fraction = val_split, val_class_fraction, val_seen_fraction
        self.raw: XLSA17Raw | None = None

    def _load(self) -> None:
        self.raw = load_xlsa17(self.root, self.name, self.features_file, self.splits_file,
                               self.embedding_file, self.embedding_key)
        self.raw.embeddings = normalize_embeddings(self.raw.embeddings, self.embedding_norm).astype(np.float32)
        self.notices = data_notices(self.raw)

    @property
    def info(self) -> dict[str, Any]:
        self.load()
        r = self.raw
        seen = np.unique(r.labels[r.locs["trainval_loc"]])
        unseen = np.unique(r.labels[r.locs["test_unseen_loc"]])
        return {
            "name": self.name,
            "label_mode": self.label_mode,
            "feature_dim": int(r.features.shape[1]),
            "embedding_dim": int(r.embeddings.shape[1]),
            "attribute_dim": int(r.embeddings.shape[1]),
            "num_classes": int(r.num_classes),
            "num_seen": int(len(seen)),
            "num_unseen": int(len(unseen)),
            "num_trainval": int(len(r.locs["trainval_loc"])),
            "num_test_seen": int(len(r.locs["test_seen_loc"])),
            "num_test_unseen": int(len(r.locs["test_unseen_loc"])),
        }

    def _build_split(self, name: str) -> FeatureSplit:
        r = self.raw
        if name == "test":
            return make_split("test", r.features, r.labels, r.embeddings, r.locs["trainval_loc"],
                              r.locs["test_seen_loc"], r.locs["test_unseen_loc"], self.preprocess, r.class_names)
        train_loc, val_loc = self._dev_locations()
        rng = np.random.default_rng(self.seed)
        keep, held = stratified_holdout(r.labels[train_loc], self.val_seen_fraction, rng)
        return make_split("dev", r.features, r.labels, r.embeddings, train_loc[keep], train_loc[held],
                          val_loc, self.preprocess, r.class_names)

    def _dev_locations(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.raw
        have = "train_loc" in r.locs and "val_loc" in r.locs
        if self.val_split == "xlsa17":
            if not have:
                raise DataError(
                    f"'{self.root / self.name / self.splits_file}' has no train_loc/val_loc for the validation "
                    "split; use data.val_split=random to hold out seen classes instead."
                )
            tr, va = r.locs["train_loc"], r.locs["val_loc"]
            shared = np.intersect1d(np.unique(r.labels[tr]), np.unique(r.labels[va]))
            if shared.size:
                raise DataError(
                    f"train_loc and val_loc share {shared.size} class(es), so the validation classes would not "
                    "be unseen during development. Use data.val_split=random for a class-disjoint hold-out."
                )
            return tr, va
        tv = r.locs["trainval_loc"]
        classes = np.unique(r.labels[tv])
        rng = np.random.default_rng(self.seed + 1)
        n_val = max(1, int(round(self.val_class_fraction * len(classes))))
        if n_val >= len(classes):
            raise DataError("Too few seen classes to hold some out as validation classes.")
        val_classes = rng.choice(classes, n_val, replace=False)
        is_val = np.isin(r.labels[tv], val_classes)
        return tv[~is_val], tv[is_val]


def data_notices(r: XLSA17Raw) -> list[str]:
    """What the loader accepts but a user should hear of: classes with an embedding and no image (they take no
    part in any split), and training features that are constant (a run on them can only reach chance)."""
    out = []
    used = np.unique(r.labels[np.concatenate([r.locs["trainval_loc"], r.locs["test_unseen_loc"]])])
    unused = np.setdiff1d(np.arange(r.num_classes), used)
    if unused.size:
        names = [r.class_names[i] for i in unused[:5]] if r.class_names else []
        out.append(f"{unused.size} class(es) have an embedding but no trainval or test-unseen image and are "
                   f"dropped (1-based ids {(unused + 1)[:10].tolist()}{', ' + str(names) if names else ''}).")
    x = r.features[r.locs["trainval_loc"]]
    spread = x.max(0) - x.min(0)
    constant = spread <= 1e-12 * np.maximum(1.0, np.abs(x).max(0))
    if constant.all():
        out.append("every training feature column is constant: nothing can be learnt from these features "
                   "(expect chance-level results; check the features file).")
    elif constant.mean() > 0.5:
        out.append(f"{int(constant.sum())} of {constant.size} training feature columns are constant.")
    return out
