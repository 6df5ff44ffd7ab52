"""The ZeroNAS sweep scripts on hand-written run directories: Fig. 6's curves and plot, Fig. 5's genotype
transfer, and gather.py's FIX / NAS columns."""

import json

import pytest
import yaml
from omegaconf import OmegaConf

from sweep.gather import gather
from sweep.plot_zeronas_fig6 import Fig6Plot, collect
from sweep.zeronas_transfer import main as transfer_main
from zsl_lightning.errors import ConfigError
from zsl_lightning.nn.genotype import Genotype
from zsl_lightning.nn.nas import SearchedNetwork

SELECTION = {"mode": "val"}


def write_run(run, results, config=None):
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"selection": SELECTION, "seed": 0, **results}))
    if config is not None:
        (run / "config_resolved.yaml").write_text(yaml.safe_dump(config))


def fake_fig6_multirun(root):
    write_run(root / "0", {"method": "clswgan", "data": "CUB",
                           "history": {"dev": [{"epoch": 1, "zsl_t1": 40.0}, {"epoch": 2, "zsl_t1": 45.5}]}})
    write_run(root / "1", {"method": "zeronas", "data": "CUB",
                           "search": {"base": "clswgan", "val": [{"epoch": 1, "zsl_t1": 30.0},
                                                                 {"epoch": 2, "zsl_t1": None}]},
                           "history": {"dev": [{"epoch": 1, "zsl_t1": 42.0}, {"epoch": 2, "zsl_t1": 50.25}]}})


def test_fig6_curves_from_a_fake_multirun(tmp_path):
    fake_fig6_multirun(tmp_path)
    assert collect(tmp_path) == {"CUB": {
        "FIX (clswgan, dev)": [(1, 40.0), (2, 45.5)],
        "NAS search (clswgan, val)": [(1, 30.0)],  # an evaluation without the metric is left out
        "NAS (clswgan, dev)": [(1, 42.0), (2, 50.25)]}}
    assert collect(tmp_path, history="test") == {"CUB": {"NAS search (clswgan, val)": [(1, 30.0)]}}


def test_fig6_callback_draws_the_png_when_the_multirun_ends(tmp_path):
    fake_fig6_multirun(tmp_path)
    cb = Fig6Plot(filename="fig6.png")
    cb.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert cb.last_path == tmp_path / "fig6.png"
    assert cb.last_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    cb2 = Fig6Plot()
    cb2.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(empty)}}}))
    assert cb2.last_path is None


def method_node(noise, att, feat):
    return {"generator": {"in_dims": [noise, att], "out_dim": feat},
            "discriminator": {"in_dims": [feat, att], "out_dim": 1}}


def test_transfer_rewrites_input_sizes_and_keeps_the_architecture(tmp_path):
    runs = tmp_path / "search"
    # a search on "cub" (attributes 6-d, noise 6-d, features 16-d) and a plain run on "flo" (10-d attributes)
    write_run(runs / "0", {"method": "zeronas", "data": "CUB"},
              {"data": {"name": "CUB"}, "method": method_node(6, 6, 16)})
    write_run(runs / "1", {"method": "clswgan", "data": "FLO"},
              {"data": {"name": "FLO"}, "method": method_node(10, 10, 16)})
    g = Genotype(kind="generator", input_dims=(6, 6), widths=(8, 8), out_dim=16, out_activation="relu",
                 nodes=[[(0, "fc_relu"), (2, "fc_lrelu_bn")], [(1, "fc_relu"), (3, "fc_relu_drop")],
                        [(3, "fc_relu"), (4, "fc_relu")]])
    g.to_yaml(runs / "0" / "genotype_g.yaml")
    assert transfer_main([str(runs), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cub_to_cub", "cub_to_flo"]
    moved = Genotype.from_yaml(tmp_path / "out" / "cub_to_flo" / "genotype_g.yaml")
    assert moved.input_dims == (10, 10) and moved.out_dim == 16
    assert (moved.widths, moved.nodes, moved.out_activation) == (g.widths, g.nodes, g.out_activation)
    assert Genotype.from_yaml(tmp_path / "out" / "cub_to_cub" / "genotype_g.yaml") == g
    # the rewritten file builds at FLO's sizes; the source file is refused there (why the step exists)
    SearchedNetwork(tmp_path / "out" / "cub_to_flo" / "genotype_g.yaml", input_dims=[10, 10], out_dim=16)
    with pytest.raises(ConfigError, match="input_dims"):
        SearchedNetwork(runs / "0" / "genotype_g.yaml", input_dims=[10, 10], out_dim=16)


def test_gather_labels_fix_nas_and_one_network_rows(tmp_path):
    head = {"headline": {"zsl_t1": 50.0}}
    write_run(tmp_path / "fix" / "0", {"method": "clswgan", "data": "CUB", **head}, {})
    write_run(tmp_path / "nas" / "0", {"method": "zeronas", "data": "CUB", "search": {"base": "vaegan"}, **head},
              {"zeronas": {"networks": ["g", "d"]}})
    write_run(tmp_path / "nas" / "1", {"method": "zeronas", "data": "CUB", "search": {"base": "clswgan"}, **head},
              {"zeronas": {"networks": ["g"]}})
    write_run(tmp_path / "nas" / "2", {"method": "zeronas", "data": "FLO", **head,
                                       "search": {"skipped": True, "genotypes": {"g": "/x/cub_to_flo/genotype_g.yaml"}}},
              {"zeronas": {"base": "clswgan", "networks": ["d"]}})
    rows = gather(tmp_path / "fix", tmp_path / "nas")
    assert [(r["arch"], r.get("base"), r.get("genotype")) for r in rows] == [
        ("FIX", None, None), ("NAS", "vaegan", None), ("NAS, fixed D", "clswgan", None),
        ("NAS, fixed G", "clswgan", "cub_to_flo")]
