"""In-memory splits handed to methods: plain tensors that live on the training device.

A *split* is one train/evaluate problem. Every benchmark yields two of them:

``test``
    train = trainval (all seen classes), evaluated on test_seen / test_unseen (metric prefix ``test/``).
``dev``
    the validation problem used for model selection: train = the benchmark's train classes minus a
    held-out share of their images, evaluated on those held-out images (val-seen) and on the
    validation classes, which act as pseudo-unseen classes (metric prefix ``val/``). Nothing of the
    test split is touched.

Class ids are global (0..C-1) in both; ``seen_classes`` / ``unseen_classes`` say which take part.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from zsl_lightning.data.preprocessing import fit_preprocessing
from zsl_lightning.errors import ConfigError, DataError


@dataclass
class FeatureSplit:
    """A single-label split: features, global class ids and the class-embedding table."""

    name: str  # "dev" | "test"
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_seen_x: torch.Tensor
    test_seen_y: torch.Tensor
    test_unseen_x: torch.Tensor
    test_unseen_y: torch.Tensor
    class_embeddings: torch.Tensor  # C x A
    seen_classes: torch.Tensor
    unseen_classes: torch.Tensor
    class_names: list[str] = field(default_factory=list)
    label_mode: str = "single"

    @property
    def eval_prefix(self) -> str:
        return "val" if self.name == "dev" else "test"

    @property
    def feature_dim(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def embedding_dim(self) -> int:
        return int(self.class_embeddings.shape[1])

    @property
    def num_train(self) -> int:
        return int(self.train_x.shape[0])

    def to(self, device: torch.device | str) -> FeatureSplit:
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return FeatureSplit(**kw)


def normalize_embeddings(emb: np.ndarray, kind: str) -> np.ndarray:
    if kind == "none":
        return emb
    if kind == "l2":
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    raise ConfigError(f"data.embedding_norm must be l2 | none, got '{kind}'.")


# --------------------------------------------------------------------------- split construction
def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split positions 0..len(labels)-1 into (kept, held_out), holding out ``fraction`` of each class.

    Every class keeps at least one image; a class with a single image holds none out.
    """
    keep, held = [], []
    for c in np.unique(labels):
        pos = np.nonzero(labels == c)[0]
        pos = pos[rng.permutation(len(pos))]
        k = int(round(fraction * len(pos)))
        k = min(k, len(pos) - 1)
        held.append(pos[:k])
        keep.append(pos[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def make_split(
    name: str,
    features: np.ndarray,
    labels: np.ndarray,
    embeddings: np.ndarray,
    train_idx: np.ndarray,
    seen_idx: np.ndarray,
    unseen_idx: np.ndarray,
    preprocess: str,
    class_names: list[str],
) -> FeatureSplit:
    for what, idx in (("training", train_idx), ("seen-evaluation", seen_idx), ("unseen-evaluation", unseen_idx)):
        if len(idx) == 0:
            raise DataError(f"The {name} split has an empty {what} set.")
    prep = fit_preprocessing(features[train_idx], preprocess)
    seen = np.unique(labels[train_idx])
    unseen = np.unique(labels[unseen_idx])
    if np.intersect1d(seen, unseen).size:
        raise DataError(f"The {name} split has classes that are both seen and unseen.")

    def t(a, dtype=torch.float32):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    return FeatureSplit(
        name=name,
        train_x=t(prep(features[train_idx])),
        train_y=t(labels[train_idx], torch.long),
        test_seen_x=t(prep(features[seen_idx])),
        test_seen_y=t(labels[seen_idx], torch.long),
        test_unseen_x=t(prep(features[unseen_idx])),
        test_unseen_y=t(labels[unseen_idx], torch.long),
        class_embeddings=t(embeddings),
        seen_classes=t(seen, torch.long),
        unseen_classes=t(unseen, torch.long),
        class_names=list(class_names),
    )
