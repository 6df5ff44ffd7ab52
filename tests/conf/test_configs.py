"""Config composition: presets per (method, data), data presets, experiments, the gather script."""

import json

import pytest

from tests.helpers import CONF, compose_cfg


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


def test_shared_bases_are_not_method_choices(tmp_path):
    """conf/method/ holds only complete methods; the shared blocks live in conf/method_base/."""
    assert not [p for p in (CONF / "method").iterdir() if p.is_dir()]
    with pytest.raises(Exception, match="method_base/wgan_gp"):
        compose_cfg(["method=method_base/wgan_gp"], tmp_path)


def _widths(node):
    """Every hidden-layer width in a method config (``hidden`` lists and CLF's ``ffn_hidden``)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "hidden":
                yield from v
            elif k == "ffn_hidden":
                yield v
            else:
                yield from _widths(v)


@pytest.mark.parametrize("method", sorted(p.stem for p in (CONF / "method").glob("*.yaml")))
def test_debug_fast_shrinks_every_network(method, tmp_path):
    from omegaconf import OmegaConf

    data = "synthetic_ml" if method.endswith(("_clswgan", "_vaegan", "_ml")) else "synthetic"
    normal = OmegaConf.to_container(compose_cfg([f"method={method}", f"data={data}"], tmp_path).method)
    fast = OmegaConf.to_container(compose_cfg([f"method={method}", f"data={data}", "debug=fast"], tmp_path).method)
    assert fast["epochs"] == 2
    assert len(list(_widths(fast))) == len(list(_widths(normal)))
    assert all(w == 64 for w in _widths(fast)), method
