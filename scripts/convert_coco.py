#!/usr/bin/env python
"""Convert MS COCO 2014 into the ``label_space: h5`` layout of ``data=coco`` (Gupta et al. Table 3).

Split (the 65 seen / 15 unseen zero-shot detection split of Rahman et al. used by the paper): training
images = train2014 images without any unseen object; ZSL test = val2014 images with at least one unseen
object (unseen columns); GZSL test = val2014 images with at least one object (all 80 columns). Labels are
+1 (present) / -1 (absent): COCO annotations are exhaustive over the 80 classes.

Inputs (you provide the features; this script does not run a CNN):
  --train-json / --val-json   instances_train2014.json / instances_val2014.json
  --train-features / --val-features
                              HDF5 with ``features`` (N x D, e.g. VGG19 fc7, 4,096) and ``image_ids`` (N)
  --glove                     GloVe text file (e.g. glove.6B.300d.txt); a multi-word class name gets the
                              mean of its words' vectors
Output: <out>/{embeddings,train,zsl_test,gzsl_test}.h5 (see docs/methods/multilabel.md). Everything is held
in memory while writing (~1.3 GB for 82k x 4,096 float32 training features).

  python scripts/convert_coco.py --train-json ... --val-json ... --train-features ... \
      --val-features ... --glove glove.6B.300d.txt --out data/coco
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

UNSEEN_15 = ["airplane", "train", "parking meter", "cat", "bear", "suitcase", "frisbee", "snowboard", "fork",
             "sandwich", "hot dog", "toilet", "mouse", "toaster", "hair drier"]


def read_glove(path: Path, words: set[str]) -> dict[str, np.ndarray]:
    vecs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, rest = line.split(" ", 1)
            if word in words:
                vecs[word] = np.asarray(rest.split(), np.float32)
    return vecs


def embed(names: list[str], glove: dict[str, np.ndarray]) -> np.ndarray:
    out = []
    for n in names:
        words = n.replace("-", " ").split()
        missing = [w for w in words if w not in glove]
        if missing:
            sys.exit(f"convert_coco: no GloVe vector for {missing} (class '{n}').")
        out.append(np.mean([glove[w] for w in words], axis=0))
    return np.stack(out)


def image_labels(ann_json: Path, cat_col: dict[int, int], n_labels: int) -> dict[int, np.ndarray]:
    data = json.loads(Path(ann_json).read_text())
    labels = {img["id"]: np.zeros(n_labels, bool) for img in data["images"]}
    for a in data["annotations"]:
        labels[a["image_id"]][cat_col[a["category_id"]]] = True
    return labels


def read_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        for k in ("features", "image_ids"):
            if k not in f:
                sys.exit(f"convert_coco: '{path}' has no '{k}' dataset (expected features N x D and image_ids N).")
        return np.asarray(f["features"], np.float32), np.asarray(f["image_ids"]).astype(np.int64)


def convert(train_json, val_json, train_features, val_features, glove_path, out, unseen=UNSEEN_15) -> Path:
    from zsl_lightning.data.multilabel_format import write_h5_benchmark

    cats = sorted(json.loads(Path(train_json).read_text())["categories"], key=lambda c: c["id"])
    names = [c["name"] for c in cats]
    bad = sorted(set(unseen) - set(names))
    if bad:
        sys.exit(f"convert_coco: unseen classes {bad} are not COCO categories.")
    seen_names = [n for n in names if n not in set(unseen)]
    order = seen_names + list(unseen)
    col = {c["id"]: order.index(c["name"]) for c in cats}
    s = len(seen_names)
    words = {w for n in order for w in n.replace("-", " ").split()}
    emb = embed(order, read_glove(Path(glove_path), words))

    def rows(ann, feats):
        lab = image_labels(ann, col, len(order))
        x, ids = read_features(feats)
        missing = [i for i in ids if int(i) not in lab]
        if missing:
            sys.exit(f"convert_coco: {len(missing)} image ids of '{feats}' are not in '{ann}', e.g. {missing[:3]}.")
        return x, np.stack([lab[int(i)] for i in ids])

    x_tr, y_tr = rows(train_json, train_features)
    keep = ~y_tr[:, s:].any(1) & y_tr[:, :s].any(1)
    x_va, y_va = rows(val_json, val_features)
    zsl, gzsl = y_va[:, s:].any(1), y_va.any(1)
    pm = lambda m: np.where(m, 1, -1).astype(np.int8)  # noqa: E731
    return write_h5_benchmark(Path(out), seen_names, list(unseen), emb[:s], emb[s:], {
        "train": (x_tr[keep], pm(y_tr[keep, :s])),
        "zsl_test": (x_va[zsl], pm(y_va[zsl, s:])),
        "gzsl_test": (x_va[gzsl], pm(y_va[gzsl])),
    })


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for a in ("train-json", "val-json", "train-features", "val-features", "glove", "out"):
        p.add_argument(f"--{a}", required=True)
    p.add_argument("--unseen", help="text file with one unseen class name per line (default: the 15 of the paper)")
    a = p.parse_args(argv)
    unseen = UNSEEN_15 if a.unseen is None else [ln.strip() for ln in open(a.unseen) if ln.strip()]
    out = convert(a.train_json, a.val_json, a.train_features, a.val_features, a.glove, a.out, unseen)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
