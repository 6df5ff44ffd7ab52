#!/usr/bin/env python
"""Convert Open Images v4 (2018_04) into the ``label_space: h5`` layout of ``data=openimages``.

Labels: the 7,186 trainable classes are seen and the 400 classes of ``top_400_unseen.csv`` (indices into
``unseen_labels.pkl``) are unseen — the LESA / BiAM protocol; copies of these lists ship in
``zsl_lightning/resources/openimages-2018_04``. Image-level human labels: Confidence 1 -> +1, 0 -> -1, a
class not verified for an image -> 0 (unknown; ignored by mAP). Training images = the train split's
images with at least one seen positive; ZSL test = test images with an unseen positive (unseen columns);
GZSL test = test images with any positive (all 7,586 columns).

Inputs (you provide the features, extracted with your own VGG19):
  --train-labels / --test-labels   train-annotations-human-imagelabels.csv / test-annotations-human-imagelabels.csv
  --train-features / --test-features
                                   HDF5 with ``features`` (N x D) and ``image_ids`` (N strings)
  --glove                          GloVe text file; a class gets the mean vector of the words of its name
  --classes                        folder with the class lists (default: the copies shipped in the package)
Output: <out>/{embeddings,train,zsl_test,gzsl_test}.h5. Features are copied chunk by chunk (``--chunk``
rows), labels are built per chunk from a sparse index, so memory stays bounded (the label index: a few
bytes per annotation; one chunk of features and labels).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from zsl_lightning.data.multilabel_format import RESOURCES, read_openimages_classes


def read_glove(path: Path, words: set[str]) -> dict[str, np.ndarray]:
    vecs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, rest = line.split(" ", 1)
            if word in words:
                vecs[word] = np.asarray(rest.split(), np.float32)
    return vecs


def tokens(name: str) -> list[str]:
    return [w for w in "".join(c.lower() if c.isalnum() else " " for c in name).split() if w]


def embed(names: list[str], glove: dict[str, np.ndarray]) -> np.ndarray:
    dim = len(next(iter(glove.values())))
    out = np.zeros((len(names), dim), np.float32)
    empty = []
    for i, n in enumerate(names):
        vs = [glove[w] for w in tokens(n) if w in glove]
        if vs:
            out[i] = np.mean(vs, axis=0)
        else:
            empty.append(n)
    if empty:
        print(f"convert_openimages: {len(empty)} classes have no GloVe word (zero vector), e.g. {empty[:5]}",
              file=sys.stderr)
    return out


def read_labels(path: Path, col: dict[str, int]) -> dict[str, list[tuple[int, int]]]:
    """ImageID -> [(column, +1 | -1)] for the classes in ``col``."""
    index: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            c = col.get(row["LabelName"])
            if c is not None:
                index[row["ImageID"]].append((c, 1 if float(row["Confidence"]) > 0.5 else -1))
    return index


def write_split(out: Path, feats: Path, index, lo: int, hi: int, keep_fn, chunk: int) -> int:
    import h5py

    with h5py.File(feats, "r") as src, h5py.File(out, "w") as dst:
        x_src, ids = src["features"], src["image_ids"]
        d = x_src.shape[1]
        fx = dst.create_dataset("features", (0, d), maxshape=(None, d), dtype="f4", chunks=(1024, d))
        fy = dst.create_dataset("labels", (0, hi - lo), maxshape=(None, hi - lo), dtype="i1", chunks=(1024, hi - lo))
        fy.attrs["coding"] = "pm1"  # 2 * confidence - 1, 0 = unannotated (a split may hold no -1 at all)
        n = 0
        for i in range(0, len(ids), chunk):
            x = np.asarray(x_src[i : i + chunk], np.float32)
            y = np.zeros((len(x), hi - lo), np.int8)
            for r, im in enumerate(ids[i : i + chunk]):
                for c, v in index.get(im.decode() if isinstance(im, bytes) else str(im), ()):
                    if lo <= c < hi:
                        y[r, c - lo] = v
            keep = keep_fn(y)
            m = int(keep.sum())
            fx.resize(n + m, axis=0), fy.resize(n + m, axis=0)
            fx[n : n + m], fy[n : n + m] = x[keep], y[keep]
            n += m
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for a in ("train-labels", "test-labels", "train-features", "test-features", "glove", "out"):
        p.add_argument(f"--{a}", required=True)
    p.add_argument("--classes", default=str(RESOURCES / "openimages-2018_04"))
    p.add_argument("--chunk", type=int, default=8192)
    a = p.parse_args(argv)
    import h5py

    seen, unseen, names = read_openimages_classes(Path(a.classes))
    order = seen + unseen
    col = {m: i for i, m in enumerate(order)}
    words = {w for m in order for w in tokens(names.get(m, ""))}
    emb = embed([names.get(m, "") for m in order], read_glove(Path(a.glove), words))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(out / "embeddings.h5", "w") as f:
        s = len(seen)
        f.create_dataset("seen", data=emb[:s]), f.create_dataset("unseen", data=emb[s:])
        f.create_dataset("seen_names", data=np.array([names.get(m, m) for m in seen], dtype=h5py.string_dtype()))
        f.create_dataset("unseen_names", data=np.array([names.get(m, m) for m in unseen], dtype=h5py.string_dtype()))
    s, c = len(seen), len(order)
    tr = read_labels(Path(a.train_labels), col)
    n = write_split(out / "train.h5", Path(a.train_features), tr, 0, s, lambda y: (y > 0).any(1), a.chunk)
    print(f"train: {n} images")
    te = read_labels(Path(a.test_labels), col)
    n = write_split(out / "zsl_test.h5", Path(a.test_features), te, s, c, lambda y: (y > 0).any(1), a.chunk)
    print(f"zsl_test: {n} images")
    n = write_split(out / "gzsl_test.h5", Path(a.test_features), te, 0, c, lambda y: (y > 0).any(1), a.chunk)
    print(f"gzsl_test: {n} images")


if __name__ == "__main__":
    main()
