"""Notices (issue 15): what the loader accepts but a user should hear of is printed and kept in results.json."""

import numpy as np
from scipy.io import loadmat, savemat

from tests.helpers import compose_cfg, shrink, write_xlsa17
from zsl_lightning.pipeline import run


def _run(tmp_path, root, capsys):
    cfg = shrink(compose_cfg(["data=xlsa17", f"data.root={root}", "data.name=TINY", "method=eszsl",
                              "eval.select=last", "method.grid=null"], tmp_path / "run"))
    res = run(cfg)
    return res, capsys.readouterr().err


def test_a_class_without_images_is_dropped_with_a_notice(tmp_path, capsys):
    d = write_xlsa17(tmp_path / "x")
    spl = loadmat(d / "att_splits.mat")
    att = spl["att"]  # A x C: one more class, no image of it
    spl["att"] = np.concatenate([att, att[:, :1]], axis=1)
    spl["allclasses_names"] = np.array([f"c{i}" for i in range(att.shape[1] + 1)], dtype=object).reshape(-1, 1)
    savemat(d / "att_splits.mat", {k: v for k, v in spl.items() if not k.startswith("__")})
    res, err = _run(tmp_path, tmp_path / "x", capsys)
    assert any("no trainval or test-unseen image" in n and "[11]" in n for n in res["notes"])
    assert "notice:" in err and "dropped" in err


def test_constant_features_get_a_notice(tmp_path, capsys):
    d = write_xlsa17(tmp_path / "x")
    res101 = loadmat(d / "res101.mat")
    res101["features"] = np.ones_like(res101["features"])
    savemat(d / "res101.mat", {k: v for k, v in res101.items() if not k.startswith("__")})
    res, err = _run(tmp_path, tmp_path / "x", capsys)
    assert any("constant" in n for n in res["notes"]) and "chance" in err


def test_clean_data_has_no_notes(tmp_path, capsys):
    write_xlsa17(tmp_path / "x")
    res, _ = _run(tmp_path, tmp_path / "x", capsys)
    assert "notes" not in res
