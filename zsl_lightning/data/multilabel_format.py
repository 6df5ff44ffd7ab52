"""On-disk formats of the multi-label benchmarks (readers and validation only; no batching here).

NUS-WIDE, as released with Generative_MLZSL / BiAM / LESA (``<root>`` = the ``NUS-WIDE`` folder)::

    <root>/NUS_WID_Tags/TagList1k.txt               1,000 Flickr tags, one per line
    <root>/ConceptsList/Concepts81.txt               81 human-annotated concepts (the unseen labels)
    <root>/word_embedding/NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300
                                                     pickle: [(1000, 300) GloVe in TagList1k order,
                                                              (81, 300) in Concepts81 order], raw (norm ~6-7)
    <root>/nus_wide_vgg_features/nus_seen_train_vgg19.h5   features N x 4096, labels N x 925  (+1 / -1 / 0)
    <root>/nus_wide_vgg_features/nus_zsl_test_vgg19.h5     features M x 4096, labels M x 81
    <root>/nus_wide_vgg_features/nus_gzsl_test_vgg19.h5    features M x 4096, labels M x 1006

Seen labels = the tags of TagList1k that are not concepts (925, in TagList1k order); unseen = the 81
concepts (Concepts81 order). Embeddings: rows L2-normalised, seen then unseen (1006 x 300).

Open Images and MS COCO use the same three HDF5 files (names from the data config) and, instead of the
pickle, an ``embeddings.h5`` with ``seen`` (S x d), ``unseen`` (U x d), ``seen_names``, ``unseen_names``
(see ``docs/data.md`` and ``scripts/convert_*.py``). Labels: +1 positive, -1 negative,
0 unknown / not annotated.

Standard multi-label classification (``data.mode=standard``, Gupta et al. Table 4: the 81 concepts have
training images) needs training labels over the benchmark's U unseen labels, which the released training
file does not carry (its labels are the 925 tags). Layout: a training file (``files.train_standard``) with
``features`` (N x D, the training images) and ``labels_81`` (``data.standard_labels_key``; N x U, +1 / -1 /
0, Concepts81 order), as BiAM's files carry ``<img>-labels_81``. ``scripts/convert_nuswide_standard.py``
writes it from NUS-WIDE's ground truth with ``features`` an HDF5 external link to the released training
file (no copy), or adds ``labels_81`` to the released file itself (``--in-place``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsl_lightning.data.preprocessing import l2_rows
from zsl_lightning.errors import ConfigError, DataError, MissingFilesError

RESOURCES = Path(__file__).resolve().parents[1] / "resources"

NUSWIDE_FILES = {
    "taglist": "NUS_WID_Tags/TagList1k.txt",
    "concepts": "ConceptsList/Concepts81.txt",
    "glove": "word_embedding/NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300",
    "train": "nus_wide_vgg_features/nus_seen_train_vgg19.h5",
    "zsl_test": "nus_wide_vgg_features/nus_zsl_test_vgg19.h5",
    "gzsl_test": "nus_wide_vgg_features/nus_gzsl_test_vgg19.h5",
}

NUSWIDE_LAYOUT = """\
<root>/NUS_WID_Tags/TagList1k.txt
<root>/ConceptsList/Concepts81.txt
<root>/word_embedding/NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300   (pickle: [(1000,300), (81,300)])
<root>/nus_wide_vgg_features/nus_seen_train_vgg19.h5   features N x 4096, labels N x 925 (+1/-1/0)
<root>/nus_wide_vgg_features/nus_zsl_test_vgg19.h5     features M x 4096, labels M x 81
<root>/nus_wide_vgg_features/nus_gzsl_test_vgg19.h5    features M x 4096, labels M x 1006"""

STANDARD_FILES = {"nuswide": "nus_wide_vgg_features/nus_std_train_vgg19.h5", "h5": "train_standard.h5"}

STANDARD_LAYOUT = """\
<root>/<files.train_standard>     NUS-WIDE default: nus_wide_vgg_features/nus_std_train_vgg19.h5 (h5 layout: train_standard.h5)
    features      N x D float (or an HDF5 external link to the released training file's features)
    labels_81     N x U int8, +1 / -1 / 0 (name: data.standard_labels_key), columns in Concepts81.txt order
<root>/<files.zsl_test>           features M x D, labels M x U: the test images, scored on the same U labels"""

STANDARD_SOURCE = (
    "scripts/convert_nuswide_standard.py (from NUS-WIDE's Groundtruth/TrainTestLabels/Labels_<concept>_Train.txt "
    "or an N x 81 array in the training file's row order); see docs/data.md, 'Standard multi-label classification'"
)

NUSWIDE_SOURCE = (
    "the NUS-WIDE VGG19 features, tag lists and GloVe vectors released with Generative_MLZSL "
    "(github.com/akshitac8/Generative_MLZSL, datasets/Readme.md: a Google-Drive folder); the tag lists and "
    "GloVe pickle also ship with BiAM / LESA (and with this package, under zsl_lightning/resources/nus-wide)."
)

H5_LAYOUT = """\
<root>/<train_file>       features N x D (float), labels N x S   (+1 / -1 / 0 = unknown), seen columns
<root>/<zsl_test_file>    features M x D, labels M x U           unseen columns
<root>/<gzsl_test_file>   features M x D, labels M x (S + U)     seen then unseen columns
<root>/<embeddings_file>  seen S x d, unseen U x d (float), seen_names, unseen_names (strings)"""


@dataclass
class LabelSpace:
    """Names and (L2-normalised) embeddings of the seen and the unseen labels."""

    seen_names: list[str]
    unseen_names: list[str]
    embeddings: np.ndarray  # (S + U) x d, seen rows first

    @property
    def num_seen(self) -> int:
        return len(self.seen_names)

    @property
    def num_unseen(self) -> int:
        return len(self.unseen_names)


def read_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8-sig").splitlines() if ln.strip()]


def read_nuswide_label_space(taglist: Path, concepts: Path, glove: Path) -> LabelSpace:
    """925 seen tags (TagList1k minus Concepts81, TagList1k order) + 81 unseen concepts, GloVe rows
    L2-normalised (the released code's ``attribute`` matrix)."""
    tags, concept_names = read_lines(taglist), read_lines(concepts)
    try:
        with open(glove, "rb") as f:
            vecs = pickle.load(f)
    except Exception as e:
        raise DataError(f"Could not read the GloVe pickle '{glove}': {e}") from None
    if not (isinstance(vecs, (list, tuple)) and len(vecs) == 2):
        raise DataError(f"'{glove}' must hold a list [tag vectors, concept vectors], got {type(vecs).__name__}.")
    tag_vecs, concept_vecs = (np.asarray(v, dtype=np.float32) for v in vecs)
    if tag_vecs.ndim != 2 or len(tag_vecs) != len(tags):
        raise DataError(f"'{glove}': {tag_vecs.shape[0] if tag_vecs.ndim else 0} tag vectors for {len(tags)} tags "
                        f"in '{taglist}'.")
    if concept_vecs.ndim != 2 or len(concept_vecs) != len(concept_names):
        raise DataError(f"'{glove}': concept vectors {concept_vecs.shape} for {len(concept_names)} concepts "
                        f"in '{concepts}'.")
    if tag_vecs.shape[1] != concept_vecs.shape[1]:
        raise DataError(f"'{glove}': tag and concept vectors have different sizes.")
    for name, v in (("tag", tag_vecs), ("concept", concept_vecs)):
        if not np.all(np.isfinite(v)):
            raise DataError(f"'{glove}': the {name} vectors contain NaN/inf.")
    concept_set = set(concept_names)
    seen_idx = [i for i, t in enumerate(tags) if t not in concept_set]
    emb = np.concatenate([tag_vecs[seen_idx], concept_vecs])
    return LabelSpace([tags[i] for i in seen_idx], concept_names, l2_rows(emb))


def read_h5_label_space(path: Path) -> LabelSpace:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("seen", "unseen") if k not in f]
            if missing:
                raise DataError(f"'{path}' has no dataset(s) {missing} (expected seen, unseen, seen_names, unseen_names).")
            seen, unseen = np.asarray(f["seen"], np.float32), np.asarray(f["unseen"], np.float32)
            names = {}
            for k, n in (("seen_names", len(seen)), ("unseen_names", len(unseen))):
                names[k] = [_s(v) for v in f[k][()]] if k in f else [f"{k[:-6]}_{i}" for i in range(n)]
    except OSError as e:
        raise DataError(f"Could not read '{path}' as HDF5: {e}") from None
    if seen.ndim != 2 or unseen.ndim != 2 or seen.shape[1] != unseen.shape[1]:
        raise DataError(f"'{path}': seen {seen.shape} and unseen {unseen.shape} embeddings must be 2-D with one width.")
    if len(names["seen_names"]) != len(seen) or len(names["unseen_names"]) != len(unseen):
        raise DataError(f"'{path}': the name lists do not match the embedding rows.")
    emb = np.concatenate([seen, unseen])
    if not np.all(np.isfinite(emb)):
        raise DataError(f"'{path}': the label embeddings contain NaN/inf.")
    overlap = set(names["seen_names"]) & set(names["unseen_names"])
    if overlap:
        raise DataError(f"'{path}': {len(overlap)} label(s) are both seen and unseen, e.g. {sorted(overlap)[:5]}.")
    return LabelSpace(names["seen_names"], names["unseen_names"], l2_rows(emb))


def _s(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


@dataclass
class H5Info:
    path: Path
    num_rows: int
    feature_shape: tuple[int, ...]
    num_labels: int
    features_key: str
    labels_key: str
    #: how the file codes its labels: pm1 (+1 / -1 / 0 = unknown) or binary ({0, 1}, read as +1 / -1)
    label_coding: str = "pm1"


def inspect_h5(path: Path, expected_labels: int, what: str, features_key: str = "features",
               labels_key: str = "labels") -> H5Info:
    """Open ``path``, check keys and shapes (without reading the data) and return its geometry."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (features_key, labels_key) if k not in f]
            if missing:
                raise DataError(f"'{path}' ({what}) has no dataset(s) {missing}; found {sorted(f.keys())[:10]}.")
            fs, ls = f[features_key].shape, f[labels_key].shape
    except OSError as e:
        raise DataError(f"Could not read '{path}' ({what}) as HDF5: {e}") from None
    if len(fs) < 2:
        raise DataError(f"'{path}': '{features_key}' must be N x D (or N x feature map), got {fs}.")
    if len(ls) != 2 or ls[0] != fs[0]:
        raise DataError(f"'{path}': '{labels_key}' has shape {ls} but '{features_key}' has {fs[0]} rows.")
    if ls[1] != expected_labels:
        hint = ""
        if ls[0] == expected_labels:
            hint = " (it looks transposed)"
        raise DataError(f"'{path}' ({what}): labels have {ls[1]} columns, expected {expected_labels}{hint}.")
    if fs[0] == 0:
        raise DataError(f"'{path}' ({what}) is empty.")
    return H5Info(Path(path), int(fs[0]), tuple(int(d) for d in fs[1:]), int(ls[1]), features_key, labels_key)


def inspect_standard_train(path: Path, num_labels: int, labels_key: str, features_key: str = "features") -> H5Info:
    """The training file of ``data.mode=standard``: ``features`` plus training labels over the U labels that
    are scored at test time (``labels_key``, default ``labels_81``). Errors name what is missing and how to
    produce it (``STANDARD_SOURCE``)."""
    import h5py

    what = f"standard-mode training file ({labels_key}: N x {num_labels})"
    try:
        with h5py.File(path, "r") as f:
            if labels_key not in f:
                raise DataError(
                    f"'{path}' has no '{labels_key}' dataset (found {sorted(f.keys())[:10]}). data.mode=standard "
                    f"(Gupta et al. Table 4) trains on the {num_labels} labels it scores and needs their training "
                    f"labels: '{labels_key}' N x {num_labels} (+1 / -1 / 0), one row per '{features_key}' row. The "
                    "released NUS-WIDE training file only has the 925 tag labels: write the file with "
                    "scripts/convert_nuswide_standard.py, or point data.files.train_standard and "
                    "data.standard_labels_key at a file and dataset that hold them (docs/data.md).")
            link = f.get(features_key, getlink=True)
            try:
                if features_key in f:
                    f[features_key].shape  # noqa: B018 - opens an external link's target
            except (KeyError, OSError) as e:
                target = f" ('{link.filename}':{link.path}, resolved next to '{path}')" if isinstance(
                    link, h5py.ExternalLink) else ""
                raise DataError(f"'{path}': '{features_key}' cannot be opened{target}: {e}") from None
    except OSError as e:
        raise DataError(f"Could not read '{path}' ({what}) as HDF5: {e}") from None
    return inspect_h5(path, num_labels, what, features_key=features_key, labels_key=labels_key)


LABEL_CODINGS = ("pm1", "binary")

#: the convention, quoted by every label-coding error
PM1_CONVENTION = ("multi-label files code a positive label as +1, a negative as -1 and an unknown one as 0; "
                  "mAP skips unknown labels, so a {0, 1}-coded file (0 meaning negative) would drop every negative "
                  "and score a meaningless ~100")


#: the attribute the converters of this package write on a label dataset: its values are +1 / -1 / 0
CODING_ATTR = "coding"


def scan_label_values(info: H5Info, chunk_rows: int = 8192) -> set:
    """The set of values of ``info``'s whole label dataset (read labels only, chunk by chunk). A dataset that
    declares ``coding = "pm1"`` (written by this package's converters) is ±1/0 by construction: a file whose
    annotations are all positive (no -1) is then not mistaken for a {0, 1} file; its values are returned with
    -1 added."""
    import h5py

    values: set = set()
    try:
        with h5py.File(info.path, "r") as f:
            ds = f[info.labels_key]
            if ds.attrs.get(CODING_ATTR) == "pm1":
                values.add(-1)
            for lo in range(0, info.num_rows, chunk_rows):
                values |= set(np.unique(np.asarray(ds[lo : lo + chunk_rows])).tolist())
    except (OSError, KeyError) as e:
        raise DataError(f"'{info.path}': could not read dataset '{info.labels_key}': {e}") from None
    return values


def check_label_coding(values: set, info: H5Info, coding: str) -> None:
    """The value set of a whole label array fits ``data.label_coding``: ``pm1`` refuses a {0, 1} file (no -1 at
    all) with the ±1/0 convention; ``binary`` accepts only {0, 1}."""
    where = f"'{info.path}' (dataset '{info.labels_key}')"
    if coding not in LABEL_CODINGS:
        raise ConfigError(f"data.label_coding must be {' | '.join(LABEL_CODINGS)}, got '{coding}'.")
    shown = sorted(values)[:6]
    if coding == "binary":
        if not values <= {0, 1}:
            raise DataError(f"{where}: data.label_coding=binary expects labels in {{0, 1}}, found {shown}. A file "
                            "with -1 is already +1/-1/0-coded: drop data.label_coding=binary.")
        return
    if values <= {0, 1} and 1 in values and info.num_labels > 1:
        raise DataError(f"{where}: labels are {{0, 1}}-coded (values {shown}, no -1). The {PM1_CONVENTION}. If 0 "
                        "means negative in this file, pass data.label_coding=binary (reads 1 as +1 and 0 as -1); "
                        "or convert it with labels * 2 - 1.")


def decode_labels(y: np.ndarray, coding: str) -> np.ndarray:
    """``binary``: 1 → +1, 0 → -1 (no unknown labels); ``pm1``: as stored."""
    return np.where(y > 0, 1, -1).astype(np.int8) if coding == "binary" else y


def check_label_values(labels: np.ndarray, path: Path) -> None:
    """Labels must be +1 / -1 / 0 (0 = unknown). Per chunk only the values are checked; whether a whole file is
    {0, 1}-coded is :func:`check_label_coding`'s question (a single chunk may legitimately lack -1)."""
    if labels.size == 0:
        return
    bad = ~np.isin(labels, (-1, 0, 1))
    if bad.any():
        vals = np.unique(labels[bad])[:5].tolist()
        raise DataError(f"'{path}': labels must be +1 (positive), -1 (negative) or 0 (unknown); found {vals}.")


def missing_files(dataset: str, root: Path, files: dict[str, str], layout: str, source: str, hint: str = "") -> None:
    miss = [root / rel for rel in files.values() if not (root / rel).is_file()]
    if miss:
        hint = f"The data root '{root}' does not exist." if not root.exists() else hint
        raise MissingFilesError(dataset, miss, layout, source, hint)


def write_h5_benchmark(out: Path, seen_names: list[str], unseen_names: list[str], seen_emb: np.ndarray,
                       unseen_emb: np.ndarray, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                       files: dict[str, str] | None = None) -> Path:
    """Write the ``label_space: h5`` layout (Open Images / MS COCO; what ``scripts/convert_*.py`` produce).

    ``splits`` maps ``train`` / ``zsl_test`` / ``gzsl_test`` to ``(features N × D, labels N × L)`` with
    labels +1 / -1 / 0 over the seen (train), unseen (zsl_test) or seen-then-unseen (gzsl_test) columns.
    Features are stored chunked (1,024 rows) so the loader can stream them; labels as int8.
    """
    import h5py

    files = {"embeddings": "embeddings.h5", "train": "train.h5", "zsl_test": "zsl_test.h5",
             "gzsl_test": "gzsl_test.h5", **dict(files or {})}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    width = {"train": len(seen_names), "zsl_test": len(unseen_names), "gzsl_test": len(seen_names) + len(unseen_names)}
    with h5py.File(out / files["embeddings"], "w") as f:
        f.create_dataset("seen", data=np.asarray(seen_emb, np.float32))
        f.create_dataset("unseen", data=np.asarray(unseen_emb, np.float32))
        f.create_dataset("seen_names", data=np.array(seen_names, dtype=h5py.string_dtype()))
        f.create_dataset("unseen_names", data=np.array(unseen_names, dtype=h5py.string_dtype()))
    for key, (x, y) in splits.items():
        x, y = np.asarray(x, np.float32), np.asarray(y)
        if y.ndim != 2 or y.shape[1] != width[key] or len(x) != len(y):
            raise DataError(f"write_h5_benchmark: {key} labels {y.shape} / features {x.shape}: expected "
                            f"{width[key]} label columns and one row per feature row.")
        check_label_values(y, out / files[key])
        with h5py.File(out / files[key], "w") as f:
            f.create_dataset("features", data=x, chunks=(max(1, min(len(x), 1024)), *x.shape[1:]))
            f.create_dataset("labels", data=y.astype(np.int8)).attrs[CODING_ATTR] = "pm1"
    return out


def read_openimages_classes(folder: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """The Open Images v4 (2018_04) ZSL label lists, as released with LESA / BiAM (copies in
    ``zsl_lightning/resources/openimages-2018_04``): the 7,186 trainable MIDs (seen), the 400 unseen MIDs
    (``top_400_unseen.csv`` holds indices into the array pickled in ``unseen_labels.pkl``) and MID → name."""
    folder = Path(folder)
    missing_files("Open Images class lists", folder, {k: k for k in (
        "classes-trainable.txt", "class-descriptions.csv", "unseen_labels.pkl", "top_400_unseen.csv")},
        "classes-trainable.txt, class-descriptions.csv, unseen_labels.pkl, top_400_unseen.csv",
        "the LESA / BiAM repositories (copies ship in zsl_lightning/resources/openimages-2018_04)")
    seen = read_lines(folder / "classes-trainable.txt")
    with open(folder / "unseen_labels.pkl", "rb") as f:
        candidates = [str(m) for m in np.asarray(pickle.load(f), dtype=object)]
    try:
        idx = [int(v) for v in read_lines(folder / "top_400_unseen.csv")]
    except ValueError as e:
        raise DataError(f"'{folder / 'top_400_unseen.csv'}' must hold one integer index per line: {e}") from None
    if idx and (min(idx) < 0 or max(idx) >= len(candidates)):
        raise DataError(f"'{folder / 'top_400_unseen.csv'}': indices outside 0..{len(candidates) - 1} "
                        "(they are 0-based indices into unseen_labels.pkl).")
    unseen = [candidates[i] for i in idx]
    names = dict(line.split(",", 1) for line in read_lines(folder / "class-descriptions.csv"))
    overlap = set(seen) & set(unseen)
    if overlap:
        raise DataError(f"{folder}: {len(overlap)} MIDs are both trainable and unseen, e.g. {sorted(overlap)[:3]}.")
    return seen, unseen, names
