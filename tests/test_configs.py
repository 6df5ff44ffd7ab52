"""Config composition: presets per (method, data), data presets, experiments, the gather script."""

import json
from pathlib import Path

import pytest

from tests.helpers import compose_cfg

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("data,name", [("cub", "CUB"), ("awa1", "AWA1"), ("awa2", "AWA2"), ("sun", "SUN"),
                                       ("apy", "APY"), ("flo", "FLO")])
def test_single_label_presets_point_at_the_xlsa17_layout(data, name, tmp_path):
    cfg = compose_cfg([f"data={data}", "paths.data_dir=/data/zsl"], tmp_path)
    assert cfg.data.name == name
    assert cfg.data.root == "/data/zsl/xlsa17"
    assert cfg.data._target_.endswith("XLSA17DataModule")


@pytest.mark.parametrize("data,lr,epochs,syn", [("cub", 1e-4, 56, 300), ("awa1", 1e-5, 30, 1800),
                                                ("flo", 1e-4, 80, 1200), ("sun", 2e-4, 40, 400)])
def test_reference_hyperparameters_follow_the_data(data, lr, epochs, syn, tmp_path):
    cfg = compose_cfg(["method=clswgan", f"data={data}"], tmp_path)
    assert cfg.method.optimizer_g.lr == lr and cfg.method.optimizer_d.lr == lr
    assert cfg.method.epochs == epochs and cfg.eval.syn_num == syn
    assert cfg.method.generator.hidden == [4096]  # paper sizes on real data


def test_command_line_overrides_beat_presets(tmp_path):
    cfg = compose_cfg(["method=clswgan", "data=cub", "method.epochs=3"], tmp_path)
    assert cfg.method.epochs == 3


def test_sentence_embeddings_option(tmp_path):
    cfg = compose_cfg(["data=cub", "data.embedding_file=sent_splits.mat"], tmp_path)
    assert cfg.data.embedding_file == "sent_splits.mat"


def test_gather_script_builds_a_table(tmp_path):
    from sweep.gather import gather, markdown

    for i, (sel, h) in enumerate([("val", 50.0), ("test_best", 55.0)]):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "results.json").write_text(json.dumps({
            "method": "clswgan", "data": "cub", "seed": i, "selection": {"mode": sel},
            "headline": {"zsl_t1": 57.3, "gzsl_H": h}}))
    rows = gather(tmp_path)
    assert [r["gzsl_H"] for r in rows] == [50.0, 55.0]
    table = markdown(rows)
    assert "selected on TEST" in table and table.count("\n") == 3
