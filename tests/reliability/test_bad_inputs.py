"""The bad-input table: (override or file damage) → exit code 2, one message naming the key or file, no traceback.

Every row goes through ``main_entry`` — the code path of ``python train.py`` — in this process (a row costs
the composition and the load of a tiny benchmark, not a subprocess); the rows that need Hydra itself (the run
directory) are subprocess runs in :func:`test_run_dir_errors_before_hydra_writes`."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import compose_cfg, rewrite_h5, write_xlsa17
from tests.reliability.helpers import train
from zsl_lightning.cli import main_entry
from zsl_lightning.data.multilabel_format import NUSWIDE_FILES
from zsl_lightning.data.synthetic_ml import generate_nuswide_layout

TINY_ML = dict(num_seen=20, num_unseen=5, num_train=240, num_test=80, feature_dim=16, num_topics=4)
SINGLE = ["method=clswgan", "data=xlsa17", "data.name=TINY"]
MULTI = ["method=clf_clswgan", "data=nuswide"]


def _h5(key, fn):
    def damage(root: Path) -> None:
        rewrite_h5(root / NUSWIDE_FILES[key], fn)
    return damage


def _set(name, index, value):
    return lambda d: d[name].__setitem__(index, value)


def _binary(d):
    d["labels"] = (d["labels"] > 0).astype(np.float32)


def _short_glove(root: Path) -> None:
    with open(root / NUSWIDE_FILES["glove"], "rb") as f:
        tags, concepts = pickle.load(f)
    with open(root / NUSWIDE_FILES["glove"], "wb") as f:
        pickle.dump([tags[:-1], concepts], f)


def _remove(key):
    return lambda root: (root / NUSWIDE_FILES[key]).unlink()


def _file_at(sub):
    def damage(out: Path) -> None:
        (out / sub).parent.mkdir(parents=True, exist_ok=True)
        (out / sub).write_text("not a folder")
    return damage


# (id, label mode, overrides, tamper (xlsa17: write_xlsa17 keywords; multi: fn(root)), run-dir damage, fragment)
ROWS = [
    # ---- single-label: config values
    ("epochs-abc", "single", ["method.epochs=abc"], None, None, "method.epochs='abc': expected int"),
    ("seed-negative", "single", ["seed=-1"], None, None, "seed=-1: the seed must be a non-negative integer"),
    ("seed-float", "single", ["seed=1.5"], None, None, "seed=1.5"),
    ("syn-num-negative", "single", ["eval.syn_num=-3"], None, None, "eval.syn_num must be >= 1"),
    ("syn-num-text", "single", ["eval.syn_num=many"], None, None, "eval.syn_num='many': expected int"),
    ("classifier-lr-text", "single", ["eval.classifier.lr=fast"], None, None, "eval.classifier.lr='fast'"),
    ("n-critic-float", "single", ["method.n_critic=2.5"], None, None, "method.n_critic=2.5: expected int"),
    ("select-unknown", "single", ["eval.select=best"], None, None, "eval.select must be one of"),
    ("metric-on-test", "single", ["optimized_metric=test/gzsl_H"], None, None, "validation metric"),
    ("gzsl-seen-unknown", "single", ["eval.gzsl_seen=fake"], None, None, "eval.gzsl_seen must be"),
    ("divergence-unknown", "single", ["method.divergence=sometimes"], None, None, "method.divergence must be"),
    ("max-epochs-zero", "single", ["trainer.max_epochs=0"], None, None, "it sets method.epochs"),
    ("max-epochs-conflict", "single", ["method.epochs=3", "trainer.max_epochs=1"], None, None,
     "set only method.epochs"),
    ("grad-clip-val", "single", ["+trainer.gradient_clip_val=1.0"], None, None, "method.grad_clip"),
    ("missing-name", "single", ["data.name=???"], None, None, "Missing mandatory config value: data.name"),
    ("missing-root", "single", ["data.root=/nonexistent"], None, None, "res101.mat"),
    # ---- single-label: run directory
    ("checkpoints-is-file", "single", [], None, _file_at("checkpoints"), "checkpoints' is a file"),
    ("dev-checkpoints-is-file", "single", [], None, _file_at("dev/checkpoints"), "dev/checkpoints' is a file"),
    # ---- single-label: damaged files (tests/helpers.py write_xlsa17)
    ("transposed-features", "single", [], {"transpose_features": True}, None, "looks transposed"),
    ("zero-based-labels", "single", [], {"zero_based_labels": True}, None, "1-based"),
    ("zero-based-locs", "single", [], {"zero_based_locs": True}, None, "1-based"),
    ("nan-features", "single", [], {"nan": True}, None, "NaN/inf"),
    ("inf-attributes", "single", [], {"inf_att": True}, None, "NaN/inf"),
    ("unseen-in-trainval", "single", [], {"overlap": True}, None, "both in trainval"),
    ("empty-split", "single", [], {"empty_split": True}, None, "is empty"),
    ("short-attributes", "single", [], {"short_att": True}, None, "columns"),
    ("missing-split-key", "single", [], {"drop": "test_unseen_loc"}, None, "test_unseen_loc"),
    # ---- multi-label: config values
    ("ml-seed-negative", "multi", ["seed=-1"], None, None, "seed=-1"),
    ("ml-label-coding-unknown", "multi", ["data.label_coding=01"], None, None, "data.label_coding must be"),
    ("ml-preprocess-unknown", "multi", ["data.preprocess=zscore"], None, None, "data.preprocess must be"),
    ("ml-label-space-unknown", "multi", ["data.label_space=tags"], None, None, "data.label_space must be"),
    ("ml-chunk-rows-text", "multi", ["data.chunk_rows=big"], None, None, "data.chunk_rows='big': expected int"),
    ("ml-val-fraction", "multi", ["data.val_image_fraction=1.5"], None, None, "data.val_image_fraction"),
    ("ml-max-epochs-conflict", "multi", ["method.epochs=3", "trainer.max_epochs=1"], None, None,
     "set only method.epochs"),
    # ---- multi-label: damaged files (the released NUS-WIDE layout)
    ("ml-binary-labels", "multi", [], _h5("train", _binary), None, "{0, 1}-coded"),
    ("ml-binary-coding-of-pm1-file", "multi", ["data.label_coding=binary"], None, None, "already"),
    ("ml-label-value-2", "multi", [], _h5("train", _set("labels", (1, 1), 2.0)), None, "labels must be +1"),
    ("ml-nan-features", "multi", [], _h5("train", _set("features", (3, 2), np.nan)), None, "NaN/inf"),
    ("ml-short-label-columns", "multi", [], _h5("train", lambda d: d.__setitem__("labels", d["labels"][:, :-1])),
     None, "expected 20"),
    ("ml-gzsl-label-columns", "multi", [], _h5("gzsl_test", lambda d: d.__setitem__("labels", d["labels"][:, :20])),
     None, "expected 25"),
    ("ml-no-features", "multi", [], _h5("train", lambda d: d.pop("features")), None, "no dataset"),
    ("ml-glove-mismatch", "multi", [], _short_glove, None, "tag vectors"),
    ("ml-missing-test-file", "multi", [], _remove("zsl_test"), None, "required file(s) not found"),
    ("ml-checkpoints-is-file", "multi", [], None, _file_at("checkpoints"), "checkpoints' is a file"),
]


@pytest.mark.parametrize("mode,overrides,tamper,run_damage,fragment", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_exits_2_with_its_message(tmp_path, cache_dir, capsys, mode, overrides, tamper, run_damage,
                                            fragment):
    if mode == "single":
        write_xlsa17(tmp_path / "xlsa17", **(tamper or {}))
        base = [*SINGLE, f"data.root={tmp_path / 'xlsa17'}"]
    else:
        root = generate_nuswide_layout(tmp_path / "NUS-WIDE", **TINY_ML)
        if tamper is not None:
            tamper(root)
        base = [*MULTI, f"data.root={root}"]
    out = tmp_path / "run"
    if run_damage is not None:
        run_damage(out)
    cfg = compose_cfg([*base, "method.epochs=1", "eval.syn_num=4", "eval.classifier.epochs=1", *overrides],
                      out, cache_dir)
    with pytest.raises(SystemExit) as e:
        main_entry(cfg)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert fragment in " ".join(err.split()), err  # rich may wrap long lines
    assert "Traceback" not in err


def test_the_table_covers_both_label_modes_with_30_rows():
    modes = [r[1] for r in ROWS]
    assert len(ROWS) >= 30 and modes.count("single") >= 10 and modes.count("multi") >= 10


def test_run_dir_errors_before_hydra_writes(tmp_path, cache_dir):
    (tmp_path / "afile").write_text("")
    r = train(["debug=fast", f"hydra.run.dir={tmp_path / 'afile' / 'run'}"], tmp_path, cache_dir)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out
    assert "hydra.run.dir" in out and "is a file, not a directory" in out
