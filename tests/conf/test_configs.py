"""Config composition: shared bases are not method choices, ``debug=fast`` shrinks every method config, the\ngather script. The values configs must hold are one table: test_config_values.py."""

import json

import pytest

from tests.helpers import CONF, compose_cfg, embedded_data, method_jobs


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
    """conf/method/ holds only complete methods (and the network option groups method/generator/ and
    method/discriminator/, e.g. a ZeroNAS genotype); the shared blocks live in conf/method_base/."""
    assert sorted(p.name for p in (CONF / "method").iterdir() if p.is_dir()) == ["discriminator", "generator"]
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


@pytest.mark.parametrize("method,mode", method_jobs())
def test_debug_fast_shrinks_every_network(method, mode, tmp_path):
    from omegaconf import OmegaConf

    data = embedded_data(method, mode)
    normal = OmegaConf.to_container(compose_cfg([f"method={method}", f"data={data}"], tmp_path).method)
    fast = OmegaConf.to_container(compose_cfg([f"method={method}", f"data={data}", "debug=fast"], tmp_path).method)
    assert fast["epochs"] == 2
    assert len(list(_widths(fast))) == len(list(_widths(normal)))
    assert all(w == 64 for w in _widths(fast)), method
