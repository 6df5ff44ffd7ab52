#!/usr/bin/env python
"""Write the 81-concept training labels that standard multi-label classification on NUS-WIDE needs
(``data.mode=standard``, ``experiment=mlzsl_table4``; Gupta et al. Table 4, LESA's protocol).

The released Generative_MLZSL training file (``nus_seen_train_vgg19.h5``) has labels for the 925 tags
only. This script adds the training images' labels over the 81 concepts (``Concepts81.txt`` order) as
``labels_81``: N x 81 int8, +1 / -1, one row per row of the training file (0 = unknown is allowed in the
layout; NUS-WIDE's ground truth has none).

Output (default): ``<root>/nus_wide_vgg_features/nus_std_train_vgg19.h5`` holding ``labels_81`` and
``features`` as an HDF5 external link to the released file's ``features`` (no 2.6 GB copy; the link is
relative, so keep both files in one folder). ``--in-place`` instead adds ``labels_81`` to the released
training file (then run with ``data.files.train_standard=nus_wide_vgg_features/nus_seen_train_vgg19.h5``).

Where the labels come from (one of):
  --groundtruth DIR   NUS-WIDE's ``Groundtruth/TrainTestLabels`` folder: ``Labels_<concept>_Train.txt``, one
                      0/1 per training image in ``ImageList/TrainImagelist.txt`` order (161,789 lines)
  --labels-npy FILE   an (N, 81) array (0/1 or -1/+1) already in the training file's row order and
                      Concepts81 column order
The row order of the released features is not documented. Give ``--check-tags NUS_WID_Tags/Train_Tags1k.dat``
(N x 1,000 0/1, TrainImagelist order) to verify it: the training file's 925 tag positives must equal that
file's on at least ``--min-agreement`` of the rows, otherwise nothing is written.

  python scripts/convert_nuswide_standard.py --root data/NUS-WIDE \\
      --groundtruth NUS-WIDE/Groundtruth/TrainTestLabels --check-tags NUS-WIDE/NUS_WID_Tags/Train_Tags1k.dat
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from zsl_lightning.data.multilabel_format import NUSWIDE_FILES, STANDARD_FILES, read_lines


def fail(msg: str):
    sys.exit(f"convert_nuswide_standard: {msg}")


def read_groundtruth(folder: Path, concepts: list[str], n: int) -> np.ndarray:
    """``Labels_<concept>_Train.txt`` for every concept → (n, 81) int8 ±1."""
    missing = [c for c in concepts if not (folder / f"Labels_{c}_Train.txt").is_file()]
    if missing:
        fail(f"'{folder}' lacks Labels_<concept>_Train.txt for {len(missing)} concept(s), e.g. {missing[:3]}.")
    out = np.empty((n, len(concepts)), np.int8)
    for j, c in enumerate(concepts):
        v = np.loadtxt(folder / f"Labels_{c}_Train.txt", dtype=np.int64, ndmin=1)
        if len(v) != n:
            fail(f"Labels_{c}_Train.txt has {len(v)} lines but the training file has {n} rows: the released "
                 "features are not one row per NUS-WIDE training image; give --labels-npy in their row order.")
        if not np.isin(v, (0, 1)).all():
            fail(f"Labels_{c}_Train.txt must hold 0/1 values.")
        out[:, j] = np.where(v > 0, 1, -1)
    return out


def read_npy(path: Path, n: int, u: int) -> np.ndarray:
    y = np.load(path)
    if y.shape != (n, u):
        fail(f"'{path}' has shape {y.shape}, expected ({n}, {u}) (training rows x concepts).")
    if not np.isin(y, (-1, 0, 1)).all():
        fail(f"'{path}' must hold 0/1 or -1/+1 (0 = unknown when -1 is used) values.")
    return (np.where(y > 0, 1, -1) if (y >= 0).all() else y).astype(np.int8)


def check_tags(train_h5: Path, tags_dat: Path, taglist: list[str], concepts: list[str], min_agreement: float,
               chunk: int = 8192) -> float:
    """Share of training rows whose 925 tag positives equal ``Train_Tags1k.dat``'s (streamed)."""
    import h5py

    seen_idx = np.array([i for i, t in enumerate(taglist) if t not in set(concepts)])
    agree = total = 0
    with h5py.File(train_h5, "r") as f, open(tags_dat) as dat:
        labels = f["labels"]
        n = labels.shape[0]
        for lo in range(0, n, chunk):
            y = np.asarray(labels[lo : lo + chunk]) > 0
            rows = []
            for _ in range(len(y)):
                line = dat.readline()
                if not line:
                    fail(f"'{tags_dat}' has fewer lines than the training file's {n} rows.")
                rows.append(np.asarray(line.split(), dtype=np.int64))
            t = np.stack(rows)
            if t.shape[1] != len(taglist):
                fail(f"'{tags_dat}' has {t.shape[1]} columns, TagList1k has {len(taglist)} tags.")
            agree += int((y == (t[:, seen_idx] > 0)).all(1).sum())
            total += len(y)
    share = agree / max(total, 1)
    if share < min_agreement:
        fail(f"only {share:.1%} of the training rows have the tag positives of '{tags_dat}' (need "
             f"{min_agreement:.0%}): the training file is not in TrainImagelist order, so the ground-truth "
             "files cannot be aligned with it. Nothing was written.")
    return share


def convert(root: Path, groundtruth: Path | None = None, labels_npy: Path | None = None, out: Path | None = None,
            in_place: bool = False, key: str = "labels_81", tags_dat: Path | None = None,
            min_agreement: float = 0.99) -> Path:
    import h5py

    root = Path(root)
    train = root / NUSWIDE_FILES["train"]
    if not train.is_file():
        fail(f"no training file '{train}' (the released nus_seen_train_vgg19.h5).")
    concepts = read_lines(root / NUSWIDE_FILES["concepts"])
    with h5py.File(train, "r") as f:
        n = int(f["features"].shape[0])
    if (groundtruth is None) == (labels_npy is None):
        fail("give exactly one of --groundtruth and --labels-npy.")
    if tags_dat is not None:
        share = check_tags(train, Path(tags_dat), read_lines(root / NUSWIDE_FILES["taglist"]), concepts, min_agreement)
        print(f"row order checked: {share:.2%} of the rows match {tags_dat}")
    y = read_groundtruth(Path(groundtruth), concepts, n) if groundtruth else read_npy(Path(labels_npy), n, len(concepts))
    if in_place:
        with h5py.File(train, "r+") as f:
            if key in f:
                del f[key]
            f.create_dataset(key, data=y, chunks=(min(n, 8192), y.shape[1]))
        return train
    out = Path(out) if out is not None else root / STANDARD_FILES["nuswide"]
    out.parent.mkdir(parents=True, exist_ok=True)
    rel = Path(train).resolve()
    try:
        rel = rel.relative_to(out.parent.resolve())
    except ValueError:
        pass  # not below the output folder: an absolute link
    with h5py.File(out, "w") as f:
        f["features"] = h5py.ExternalLink(str(rel), "/features")
        f.create_dataset(key, data=y, chunks=(min(n, 8192), y.shape[1]))
        f.attrs["concepts"] = np.array(concepts, dtype=h5py.string_dtype())
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="the NUS-WIDE folder of data=nuswide")
    p.add_argument("--groundtruth", help="Groundtruth/TrainTestLabels folder of the NUS-WIDE release")
    p.add_argument("--labels-npy", help="(N, 81) array in the training file's row order")
    p.add_argument("--out", help=f"output file (default: <root>/{STANDARD_FILES['nuswide']})")
    p.add_argument("--in-place", action="store_true", help="add the labels to the released training file instead")
    p.add_argument("--key", default="labels_81", help="dataset name (data.standard_labels_key)")
    p.add_argument("--check-tags", help="NUS_WID_Tags/Train_Tags1k.dat: verify the training file's row order")
    p.add_argument("--min-agreement", type=float, default=0.99)
    a = p.parse_args(argv)
    out = convert(Path(a.root), a.groundtruth, a.labels_npy, a.out, a.in_place, a.key, a.check_tags, a.min_agreement)
    print(f"wrote {a.key} to {out}")


if __name__ == "__main__":
    main()
