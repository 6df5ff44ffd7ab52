"""VS-Boost's presets, Table 2-4 experiment configs, LisGAN preprocessing, and runs on xlsa17 files."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.helpers import CONF, compose_cfg, shrink, write_xlsa17
from zsl_lightning.data.split import fit_preprocessing
from zsl_lightning.pipeline import run

# Table 4's ablations as named variants (conf/variant/vs_boost_*.yaml) -> (use_sml, use_rml)
TABLE4 = {"vs_boost_plain": (False, False), "vs_boost_sml": (True, False), "vs_boost_rml": (False, True),
          "vs_boost_full": (True, True)}
VARIANTS = sorted(p.stem for p in (CONF / "variant").glob("vs_boost_*.yaml"))


@pytest.mark.parametrize("table,runs", [("vs_boost_table2", 5), ("vs_boost_table3", 5), ("vs_boost_table4", 20)])
def test_experiment_configs_sweep_the_papers_tables(tmp_path, table, runs):
    cfg = compose_cfg([f"experiment={table}"], tmp_path)
    assert cfg.method._target_.endswith("VSBoost")
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    assert params["data"] == ["apy", "awa2", "cub", "flo", "sun"]
    assert int(np.prod([len(v) for v in params.values()])) == runs
    if table == "vs_boost_table4":
        assert params["variant"] == ["vs_boost_plain", "vs_boost_sml", "vs_boost_rml", "vs_boost_full"]
        assert sorted(params["variant"]) == VARIANTS  # every named variant is swept, and only those


def test_lisgan_standardisation_matches_hand_computation():
    train = np.array([[0.0, 2.0], [2.0, 2.0], [4.0, 2.0]])
    prep = fit_preprocessing(train, "standard")
    # column 0: mean 2, std sqrt(8/3); column 1 constant (std -> 1); max of the scaled train = sqrt(3/2)
    out = prep(np.array([[4.0, 3.0]]))
    s = np.sqrt(8 / 3)
    mx = 2 / s
    assert out[0] == pytest.approx([(4 - 2) / s / mx, (3 - 2) / mx], rel=1e-6)
    assert prep(train).max() == pytest.approx(1.0)


def test_table4_variant_files_are_the_four_ablations():
    assert VARIANTS == sorted(TABLE4)


@pytest.mark.parametrize("variant", sorted(TABLE4))
def test_each_table4_variant_runs_from_its_config_on_xlsa17_files(tmp_path, variant):
    """Every named ablation composes inside the Table 4 experiment, sets its two flags, runs end to end on
    an xlsa17-layout directory, reports T1 and u/s/H and records its label in results.json; with CUB's
    preset the class embeddings come from sent_splits.mat."""
    sml, rml = TABLE4[variant]
    root = tmp_path / "xlsa17"
    write_xlsa17(root, "CUB", n_classes=12, n_unseen=3, n_val=2, per_class=12, dim=16, att_dim=6)
    from scipy.io import savemat

    sent = np.abs(np.random.default_rng(3).standard_normal((20, 12)))  # 20-d "sentence" embeddings, d x C
    savemat(root / "CUB" / "sent_splits.mat", {"att": sent / np.linalg.norm(sent, axis=0)})
    cfg = compose_cfg(["experiment=vs_boost_table4", "data=cub", f"data.root={root}", f"variant={variant}",
                       "method.epochs=2", "method.sampler.n_way=3", "method.sampler.k_shot=4", "eval.every=1",
                       "eval.syn_num=10", "eval.classifier.epochs=2"], tmp_path / "out")
    assert (cfg.method.use_sml, cfg.method.use_rml) == (sml, rml)
    res = run(shrink(cfg, 16))
    assert res["data"] == "CUB"
    assert res["variant"] == variant
    assert json.loads((tmp_path / "out" / "results.json").read_text())["variant"] == variant
    assert set(res["headline"]) == {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_H"}
    assert all(np.isfinite(v) for v in res["headline"].values())
    saved = OmegaConf.load(tmp_path / "out" / "config_resolved.yaml")
    assert saved.data_info.embedding_dim == 20  # sent_splits.mat, not att_splits.mat's 6-d att
    assert (saved.method.use_sml, saved.method.use_rml) == (sml, rml)
