"""The embedded feature-map benchmark (``data=synthetic_maps``): small multi-scale maps whose labels are LOCAL.

A seeded generator draws ``num_seen`` of NUS-WIDE's 925 seen tags and ``num_unseen`` of its 81 concepts with
their real GloVe vectors (``synthetic_ml.pick_nuswide_labels``) and writes, under one cache folder::

    NUS_WID_Tags/TagList1k.txt, ConceptsList/Concepts81.txt, word_embedding/...   (as synthetic_ml)
    maps/train.h5   cached-maps format (feature_maps_format), labels N x S (seen columns), and labels_81
                    N x U: the same images' unseen labels, read only by data.mode=standard (every label seen)
    maps/test.h5    labels M x (S + U), seen then unseen (GZSL; ZSL = the last U columns)

so the loader reads it exactly as it reads maps cached from real images.

How an image is made (all seeded):

* every label j has a channel direction d_j = normalise(P (e_j - ē)), P a fixed Gaussian C x 300 matrix,
  e_j the label's L2-normalised GloVe vector, ē the mean of all 1,006 NUS-WIDE vectors: an affine function of
  the word vector shared by seen and unseen labels, so unseen labels are predictable from their vectors;
* an image has 1..``max_labels`` labels (uniform over seen AND unseen; training files annotate only the seen
  ones, as NUS-WIDE does); each label plants a ``patch`` x ``patch`` block a · d_j (a ~ U(0.75, 1.25) ·
  ``amplitude``) at a uniformly random place of the 28 x 28 map, on N(0, ``noise``²) background;
* the 14 x 14 and 7 x 7 maps are 2 x 2 and 4 x 4 average poolings of the 28 x 28 map plus fresh
  N(0, ``pool_noise``²) noise. No ReLU (values are signed, unlike VGG19's);
* ``decoys``: each image also receives as many absent labels' directions, spread evenly over the whole map
  with the same total (so the same global mean) as a planted block: a globally pooled feature cannot tell a
  present label from a decoy, a local one can.

A 6 x 6 block covers 4.6% of the 28 x 28 map, so global average pooling dilutes it about 20-fold (and
decoys match it) while a local (window / max) pooling keeps it. With the defaults (150 seen, 20 unseen,
16 channels, 2,000 + 800 images, ~1.5 s, 97 MB), ridge probes on the 7 x 7 maps score seen mAP 0.12 with
global average pooling and 0.19 with per-channel max / min pooling (chance 0.011); a bilinear probe through
the word vectors on the max / min features scores ZSL mAP 0.076 on the unseen labels (chance 0.012).
Without decoys the global probe comes within 20% of the local one. tests/data/test_feature_maps.py
checks both properties.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from zsl_lightning.data.feature_maps_format import FeatureMapsWriter
from zsl_lightning.data.multilabel_format import RESOURCES
from zsl_lightning.data.synthetic_ml import pick_nuswide_labels, write_nuswide_label_files
from zsl_lightning.errors import ConfigError

GENERATOR_VERSION = 2  # 2: train.h5 also holds labels_81 (data.mode=standard); the maps and labels are unchanged
SCALES = (28, 14, 7)
MAPS_FILES = {"train": "maps/train.h5", "test": "maps/test.h5"}
STANDARD_LABELS_KEY = "labels_81"  # the name NUS-WIDE's standard-mode labels have (BiAM: <img>-labels_81)


def _vocabulary_mean() -> np.ndarray:
    with open(RESOURCES / "nus-wide" / "NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300", "rb") as f:
        vecs = np.concatenate([np.asarray(v, np.float64) for v in pickle.load(f)])
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).mean(0)


def label_directions(embeddings: np.ndarray, channels: int, rng: np.random.Generator) -> np.ndarray:
    """d_j = normalise(P (e_j − ē)) for every row e_j of ``embeddings`` → L x C."""
    proj = rng.standard_normal((channels, embeddings.shape[1]))
    d = (embeddings - _vocabulary_mean()) @ proj.T
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def make_maps(rng: np.random.Generator, directions: np.ndarray, n: int, *, patch: int, amplitude: float,
              noise: float, pool_noise: float, max_labels: int, mean_labels: float, decoys: bool = True):
    """n images → ({28: N x C x 28 x 28, 14: ..., 7: ...} float32, labels N x L bool, patch corners N x L x 2
    (-1 where the label is absent))."""
    n_lab, c = directions.shape
    x = rng.standard_normal((n, c, 28, 28), dtype=np.float32) * np.float32(noise)
    y = np.zeros((n, n_lab), bool)
    where = np.full((n, n_lab, 2), -1, np.int64)
    k = np.clip(1 + rng.poisson(mean_labels - 1, n), 1, max_labels)
    spread = patch * patch / 28**2
    for i in range(n):
        chosen = rng.choice(n_lab, 2 * k[i] if decoys else k[i], replace=False)
        for t, j in enumerate(chosen):
            a = amplitude * rng.uniform(0.75, 1.25)
            if t >= k[i]:  # a decoy: the same global mean as a planted block, spread over the whole map
                x[i] += (a * spread * directions[j])[:, None, None].astype(np.float32)
                continue
            r, q = rng.integers(0, 28 - patch + 1, 2)
            x[i, :, r:r + patch, q:q + patch] += (a * directions[j])[:, None, None].astype(np.float32)
            y[i, j], where[i, j] = True, (r, q)
    maps = {28: x}
    for s in (14, 7):
        f = 28 // s
        pooled = x.reshape(n, c, s, f, s, f).mean((3, 5))
        maps[s] = pooled + rng.standard_normal(pooled.shape, dtype=np.float32) * np.float32(pool_noise)
    return maps, y, where


def generate_synthetic_maps(out: str | Path, *, seed: int = 0, num_seen: int = 150, num_unseen: int = 20,
                            num_train: int = 2000, num_test: int = 800, channels: int = 16, patch: int = 6,
                            amplitude: float = 2.0, noise: float = 1.0, pool_noise: float = 0.2,
                            max_labels: int = 4, mean_labels: float = 2.0, decoys: bool = True,
                            unknown_fraction: float = 0.02,
                            chunk_rows: int = 256) -> Path:
    if not (2 <= num_seen <= 925 and 2 <= num_unseen <= 81):
        raise ConfigError("synthetic_maps: need 2 <= num_seen <= 925 and 2 <= num_unseen <= 81.")
    if not (1 <= patch <= 28 and 1 <= max_labels <= num_seen + num_unseen and mean_labels >= 1):
        raise ConfigError("synthetic_maps: need 1 <= patch <= 28, 1 <= max_labels <= labels, mean_labels >= 1.")
    rng = np.random.default_rng(seed)
    picked = pick_nuswide_labels(rng, num_seen, num_unseen)
    directions = label_directions(picked.embeddings, channels, rng)
    kw = dict(patch=patch, amplitude=amplitude, noise=noise, pool_noise=pool_noise, max_labels=max_labels,
              mean_labels=mean_labels, decoys=decoys)
    out = Path(out)
    write_nuswide_label_files(out, picked)
    pm = lambda m: np.where(m, 1, -1).astype(np.int8)  # noqa: E731
    for split, n in (("train", num_train), ("test", num_test)):
        maps, y, _ = make_maps(rng, directions, n, **kw)
        lab = pm(y[:, :num_seen]) if split == "train" else pm(y)
        # training images' labels over the unseen labels, fully annotated like the test file's unseen columns
        extra = {STANDARD_LABELS_KEY: pm(y[:, num_seen:])} if split == "train" else {}
        if split == "test":
            unknown = rng.random(lab.shape) < unknown_fraction
            unknown[:, num_seen:] = False
            lab[unknown] = 0
        attrs = {"generator": "synthetic_maps", "generator_version": GENERATOR_VERSION, "seed": seed}
        with FeatureMapsWriter(out / MAPS_FILES[split], {s: channels for s in SCALES}, lab.shape[1],
                               backbone="synthetic", input_size=224, chunk_rows=chunk_rows, attrs=attrs,
                               extra_labels={k: v.shape[1] for k, v in extra.items()}) as w:
            for lo in range(0, n, chunk_rows):
                hi = min(n, lo + chunk_rows)
                w.append({s: m[lo:hi] for s, m in maps.items()}, lab[lo:hi],
                         [f"{split}_{i:06d}" for i in range(lo, hi)], {k: v[lo:hi] for k, v in extra.items()})
    return out


def cached_synthetic_maps(cache_dir: str | Path, generator: dict | None = None) -> Path:
    """The benchmark's folder under ``cache_dir`` (one per generator setting), generated on first use into a
    temporary folder and renamed into place (concurrent runs never see half a benchmark)."""
    kwargs = dict(generator or {})
    key = json.dumps({"v": GENERATOR_VERSION, **kwargs}, sort_keys=True)
    root = Path(cache_dir) / ("synthetic_maps-" + hashlib.sha1(key.encode()).hexdigest()[:10])
    if not (root / MAPS_FILES["test"]).is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".synthetic_maps-", dir=root.parent))
        try:
            generate_synthetic_maps(tmp, **kwargs)
            try:
                os.replace(tmp, root)
            except OSError:
                if not (root / MAPS_FILES["test"]).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root
