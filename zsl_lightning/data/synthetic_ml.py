"""The embedded multi-label benchmark (``data=synthetic_ml``), in the exact NUS-WIDE layout.

A seeded generator picks ``num_seen`` of NUS-WIDE's 925 seen tags and ``num_unseen`` of its 81 concepts —
with their real GloVe vectors (the released pickle, shipped in ``zsl_lightning/resources/nus-wide``) —
writes TagList1k.txt / Concepts81.txt / the GloVe pickle / the three VGG19-style HDF5 files into a cache
directory, and the ordinary NUS-WIDE loader reads them.

How images are made (all seeded):

* label co-occurrence: ``num_topics`` topics, each a random label's GloVe vector; an image draws a topic and
  then 1..``max_labels`` labels from softmax(cos(label, topic) / temperature) over seen AND unseen labels,
  so unseen labels co-occur with semantically close seen labels;
* every label has a hidden visual prototype p = W₂ tanh(s · W₁ e + b), a fixed non-linear function of its
  (L2-normalised) GloVe vector e shared by seen and unseen labels; an image's feature is
  ReLU(Σ_j w_j p_j / √n + c + σ ε) over its labels j (w_j ~ U(0.5, 1.5));
* training files annotate only the seen labels (+1/-1; unseen labels in training images stay
  unannotated, as in NUS-WIDE); the ZSL and GZSL test files share features; GZSL labels have a
  ``unknown_fraction`` of 0 (unknown) entries in the seen columns;
* ``data.mode=standard`` (Gupta et al. Table 4) reads one more file, ``nus_std_train_vgg19.h5``, in the layout
  scripts/convert_nuswide_standard.py writes for the real NUS-WIDE: the training features (a copy, not an
  external link: 1.5 MB) and ``labels_81``, the same training images' labels over the U unseen labels
  (int8 +1/-1, fully annotated like the ZSL test file; Concepts81 order). The generator draws them anyway;
  writing them changes no draw and no byte of the other files (generator version 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsl_lightning.data.multi_label import MultiLabelDataModule, StandardMode
from zsl_lightning.data.multilabel_benchmark import StandardMultiLabelBenchmark
from zsl_lightning.data.multilabel_format import NUSWIDE_FILES, RESOURCES, STANDARD_FILES, read_lines
from zsl_lightning.errors import ConfigError

GENERATOR_VERSION = 2  # 2: also nus_std_train_vgg19.h5 (data.mode=standard); the other files are unchanged
STANDARD_LABELS_KEY = "labels_81"  # the name NUS-WIDE's standard-mode training labels have


@dataclass
class PickedLabels:
    """A seeded subset of NUS-WIDE's label vocabulary with its real GloVe vectors."""

    seen_names: list[str]
    unseen_names: list[str]
    seen_vecs: np.ndarray  # raw GloVe rows (as in the released pickle), TagList1k order
    unseen_vecs: np.ndarray  # raw, Concepts81 order
    embeddings: np.ndarray  # (S + U) x 300, L2-normalised rows, seen first


def pick_nuswide_labels(rng: np.random.Generator, num_seen: int, num_unseen: int) -> PickedLabels:
    """``num_seen`` of the 925 seen tags and ``num_unseen`` of the 81 concepts, drawn with ``rng`` (two
    draws: seen, then unseen; kept in this order so seeded benchmarks do not change)."""
    src = RESOURCES / "nus-wide"
    tags, concepts = read_lines(src / "TagList1k.txt"), read_lines(src / "Concepts81.txt")
    with open(src / "NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300", "rb") as f:
        tag_vecs, concept_vecs = (np.asarray(v, np.float32) for v in pickle.load(f))
    seen_pool = [i for i, t in enumerate(tags) if t not in set(concepts)]
    seen_idx = np.sort(rng.choice(seen_pool, num_seen, replace=False))
    unseen_idx = np.sort(rng.choice(len(concepts), num_unseen, replace=False))
    emb = np.concatenate([tag_vecs[seen_idx], concept_vecs[unseen_idx]])
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return PickedLabels([tags[i] for i in seen_idx], [concepts[i] for i in unseen_idx], tag_vecs[seen_idx],
                        concept_vecs[unseen_idx], emb)


def write_nuswide_label_files(out: Path, picked: PickedLabels) -> None:
    """TagList1k.txt / Concepts81.txt / the GloVe pickle of ``picked`` under ``out`` (NUS-WIDE layout), so
    ``read_nuswide_label_space`` reads them back."""
    for key in ("taglist", "concepts", "glove"):
        (out / NUSWIDE_FILES[key]).parent.mkdir(parents=True, exist_ok=True)
    (out / NUSWIDE_FILES["taglist"]).write_text("\n".join(picked.seen_names) + "\n")
    (out / NUSWIDE_FILES["concepts"]).write_text("\n".join(picked.unseen_names) + "\n")
    with open(out / NUSWIDE_FILES["glove"], "wb") as f:  # the released format: raw vectors, two arrays
        pickle.dump([picked.seen_vecs, picked.unseen_vecs], f)


def generate_nuswide_layout(out: str | Path, *, seed: int = 0, num_seen: int = 200, num_unseen: int = 16,
                            num_train: int = 3000, num_test: int = 1000, feature_dim: int = 128,
                            hidden_dim: int = 64, num_topics: int = 12, temperature: float = 0.1,
                            max_labels: int = 5, mean_labels: float = 2.5, nonlinearity: float = 3.0,
                            feature_noise: float = 0.3, unknown_fraction: float = 0.02) -> Path:
    import h5py

    if not (2 <= num_seen <= 925 and 2 <= num_unseen <= 81):
        raise ConfigError("synthetic_ml: need 2 <= num_seen <= 925 and 2 <= num_unseen <= 81.")
    rng = np.random.default_rng(seed)
    picked = pick_nuswide_labels(rng, num_seen, num_unseen)
    emb = picked.embeddings
    n_lab = num_seen + num_unseen

    centers = emb[rng.choice(n_lab, num_topics, replace=False)]
    logits = centers @ emb.T / temperature  # topics x labels
    topic_p = np.exp(logits - logits.max(1, keepdims=True))
    topic_p /= topic_p.sum(1, keepdims=True)
    W1 = rng.standard_normal((emb.shape[1], hidden_dim)) / np.sqrt(emb.shape[1])
    b1 = 0.3 * rng.standard_normal(hidden_dim)
    W2 = rng.standard_normal((hidden_dim, feature_dim)) / np.sqrt(hidden_dim)
    protos = np.tanh(nonlinearity * emb @ W1 * np.sqrt(emb.shape[1]) / 3 + b1) @ W2
    offset = 0.2

    def images(n):
        y = np.zeros((n, n_lab), bool)
        for i in range(n):
            t = rng.integers(num_topics)
            k = int(min(max_labels, 1 + rng.poisson(mean_labels - 1)))
            y[i, rng.choice(n_lab, k, replace=False, p=topic_p[t])] = True
        w = rng.uniform(0.5, 1.5, size=y.shape) * y
        x = (w @ protos) / np.sqrt(np.maximum(y.sum(1, keepdims=True), 1)) + offset
        x = np.maximum(x + feature_noise * rng.standard_normal(x.shape), 0.0).astype(np.float32)
        return x, y

    x_tr, y_tr = images(num_train)
    x_te, y_te = images(num_test)
    pm = lambda m: np.where(m, 1, -1).astype(np.int8)  # noqa: E731
    gzsl = pm(y_te)
    unknown = rng.random(gzsl.shape) < unknown_fraction
    unknown[:, num_seen:] = False
    gzsl[unknown] = 0

    out = Path(out)
    for rel in NUSWIDE_FILES.values():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
    write_nuswide_label_files(out, picked)
    for key, x, y in (("train", x_tr, pm(y_tr[:, :num_seen])), ("zsl_test", x_te, pm(y_te[:, num_seen:])),
                      ("gzsl_test", x_te, gzsl)):
        with h5py.File(out / NUSWIDE_FILES[key], "w") as f:
            f.create_dataset("features", data=x, chunks=(min(len(x), 1024), x.shape[1]))
            f.create_dataset("labels", data=y.astype(np.float32))
    with h5py.File(out / STANDARD_FILES["nuswide"], "w") as f:  # data.mode=standard: the unseen labels of x_tr
        f.create_dataset("features", data=x_tr, chunks=(min(len(x_tr), 1024), x_tr.shape[1]))
        f.create_dataset(STANDARD_LABELS_KEY, data=pm(y_tr[:, num_seen:]),
                         chunks=(min(len(x_tr), 8192), num_unseen))
        f.attrs["concepts"] = np.array(picked.unseen_names, dtype=h5py.string_dtype())
    return out


class SyntheticMultiLabelDataModule(MultiLabelDataModule):
    """``data=synthetic_ml``: generates (once, cached by its parameters) and loads the embedded benchmark;
    ``data.mode=standard`` builds :class:`StandardSyntheticMultiLabelDataModule`."""

    def __init__(self, cache_dir: str, generator: dict | None = None, **kwargs):
        self.generator_kwargs = dict(generator or {})
        key = json.dumps({"v": GENERATOR_VERSION, **self.generator_kwargs}, sort_keys=True)
        folder = "synthetic_ml-" + hashlib.sha1(key.encode()).hexdigest()[:10]
        super().__init__(root=str(Path(cache_dir) / folder), name="synthetic_ml", label_space="nuswide", **kwargs)

    def _load(self) -> None:
        if not (self.root / NUSWIDE_FILES["gzsl_test"]).is_file():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".synthetic_ml-", dir=self.root.parent))
            try:
                generate_nuswide_layout(tmp, **self.generator_kwargs)
                try:
                    os.replace(tmp, self.root)
                except OSError:
                    if not (self.root / NUSWIDE_FILES["gzsl_test"]).is_file():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        super()._load()


class StandardSyntheticMultiLabelDataModule(StandardMode, SyntheticMultiLabelDataModule):
    """``data=synthetic_ml data.mode=standard`` (Gupta et al. Table 4): the embedded benchmark's U unseen labels
    as the only labels, trained from ``nus_std_train_vgg19.h5``'s ``labels_81`` (the training images' unseen
    labels), tested on the ZSL test images with one of them (metrics ``std_*``)."""

    benchmark_class = StandardMultiLabelBenchmark


SyntheticMultiLabelDataModule.standard_class = StandardSyntheticMultiLabelDataModule
