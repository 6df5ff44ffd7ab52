"""Every value a config must hold, in one table: (overrides, key, expected value, where the value comes from).

The source column says why the value is what it is: a paper (section / table), a released code base
(/work/shared/REFERENCE.md summarises both), or a project choice (documented in the config's comment). A change to
a config that moves one of these values must change this table, and say why in the commit.
Composition is shared between rows with the same overrides (one ``compose`` per distinct override list).
"""

from __future__ import annotations

from functools import cache

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from tests.helpers import compose_cfg

ABSENT = object()  # the key must not exist

XLSA17 = "xlsa17 layout (REFERENCE.md: <root>/<DATASET>/{res101,att_splits}.mat)"
CLSWGAN_SCRIPTS = "f-CLSWGAN released GZSL scripts (REFERENCE.md)"
CLSWGAN_NETS = "f-CLSWGAN paper / released code: 4,096-unit hidden layers"
MLZSL = "Gupta et al. 2021, Sec. 4.1 (per-dataset settings)"
MLZSL_CODE = "Generative_MLZSL released code (REFERENCE.md)"
MLZSL_TABLES = "Gupta et al. 2021, Tables 1-4 (the experiments that reproduce them)"
VSBOOST = "VS-Boost paper, Sec. 4 (episodes N-K; 4,096-unit networks; loss weights)"
DEMO = "project choice: CPU-sized presets of the embedded benchmark (conf/preset/mlzsl/synthetic_ml.yaml)"

ML_METHODS = [f"{f}_{g}" for g in ("clswgan", "vaegan") for f in ("alf", "flf", "clf")]
#: Gupta et al. Sec. 4.1: data -> (batch, epochs, classifier batch, classifier lr, top-K)
ML_DATA = {"nuswide": (64, 50, 300, 1e-3, [3, 5]), "openimages": (128, 1, 100, 1e-4, [10, 20]),
           "coco": (64, 70, 100, 1e-3, [3, 5])}
#: f-CLSWGAN scripts: data -> (lr, epochs, syn_num)
CLSWGAN_DATA = {"cub": (1e-4, 56, 300), "awa1": (1e-5, 30, 1800), "flo": (1e-4, 80, 1200), "sun": (2e-4, 40, 400)}
#: VS-Boost Sec. 4: "8-64 for APY and AWA, 4-16 for CUB, 1-32 for FLO and 64-2 for SUN"
VS_EPISODES = {"apy": (8, 64), "awa2": (8, 64), "cub": (4, 16), "flo": (1, 32), "sun": (64, 2)}


def _rows():
    rows = []

    def add(overrides, values: dict, source: str):
        rows.extend((tuple(overrides), k, v, source) for k, v in values.items())

    for data, name in [("cub", "CUB"), ("awa1", "AWA1"), ("awa2", "AWA2"), ("sun", "SUN"), ("apy", "APY"),
                       ("flo", "FLO")]:
        add([f"data={data}", "paths.data_dir=/data/zsl"],
            {"data.name": name, "data.root": "/data/zsl/xlsa17",
             "data._target_": "zsl_lightning.data.single_label.XLSA17DataModule"}, XLSA17)

    for data, (lr, epochs, syn) in CLSWGAN_DATA.items():
        ov = ["method=clswgan", f"data={data}"]
        add(ov, {"method.optimizer_g.lr": lr, "method.optimizer_d.lr": lr, "method.epochs": epochs,
                 "eval.syn_num": syn}, CLSWGAN_SCRIPTS)
        add(ov, {"method.generator.hidden": [4096]}, CLSWGAN_NETS)

    for method in ML_METHODS:
        for data, (batch, epochs, cls_batch, cls_lr, top_k) in ML_DATA.items():
            ov = [f"method={method}", f"data={data}", "paths.data_dir=/data"]
            add(ov, {"method.sampler.batch_size": batch, "method.epochs": epochs,
                     "eval.classifier.batch_size": cls_batch, "eval.classifier.lr": cls_lr,
                     "eval.classifier.epochs": 50, "method.optimizer_g.lr": 1e-4, "method.optimizer_d.lr": 1e-4,
                     "method.optimizer_g.betas": [0.5, 0.999], "data.top_k": top_k,
                     "method.generator.hidden": [4096]}, MLZSL)
            add(ov, {"method.gzsl_real": True}, "Gupta et al. Sec. 3 (the released code: false)")
            if method.startswith("clf"):
                add(ov, {"method.generator.heads": 8, "method.generator.ffn_hidden": 8192}, MLZSL_CODE)
            if method.endswith("clswgan"):
                add(ov, {"method.cls_weight": 0.1}, "Gupta et al. Eq. 7 (alpha)")
            else:
                add(ov, {"method.lambda_gp": 10.0}, MLZSL)
                add(ov, {"method.optimizer_e.betas": [0.5, 0.999], "method.optimizer_e.lr": 1e-4},
                    "Gupta et al.: the whole synthesis network uses Adam (0.5, 0.999); released code: default betas")

    add(["method=clf_vaegan", "data=nuswide", "paths.data_dir=/data"],
        {"data.root": "/data/NUS-WIDE", "data.label_space": "nuswide", "data.min_positives": 1,
         "data.max_positives": 10, "data.preprocess": "minmax"}, MLZSL_CODE)
    all_ml = "alf_clswgan,flf_clswgan,clf_clswgan,alf_vaegan,flf_vaegan,clf_vaegan"
    for table, params in [("mlzsl_table1", {"method": all_ml}), ("mlzsl_table2", {"data": "nuswide,openimages"})]:
        add([f"experiment={table}", "paths.data_dir=/data"],
            {"hydra.sweeper.params": params, "method.generator._target_": "zsl_lightning.nn.fusion.CLF"},
            MLZSL_TABLES)
    add(["experiment=mlzsl_table3", "paths.data_dir=/data"], {"data.name": "COCO", "method.epochs": 70},
        MLZSL_TABLES)
    add(["experiment=mlzsl_table4", "paths.data_dir=/data"],
        {"data.name": "NUS-WIDE", "data.mode": "standard", "data.standard_labels_key": "labels_81",
         "method.generator._target_": "zsl_lightning.nn.fusion.CLF",
         "method._target_": "zsl_lightning.methods.vaegan.VAEGAN"}, MLZSL_TABLES)
    add(["experiment=mlzsl_table4", "paths.data_dir=/data"],
        {"method.epochs": 50, "eval.classifier.batch_size": 300, "data.top_k": [3, 5]},
        "Gupta et al. Sec. 4.1's NUS-WIDE settings (the paper gives none of its own for Table 4)")

    for method in ML_METHODS:
        ov = [f"method={method}", "data=synthetic_ml"]
        add(ov, {"method.epochs": 40, "method.noise_dim": 16, "eval.every": 10, "method.generator.hidden": [256],
                 "method.discriminator.hidden": [256],
                 "method.optimizer_g.lr": 2e-3 if method.endswith("clswgan") else 1e-3,
                 "method.encoder.hidden": [256] if method.endswith("vaegan") else ABSENT}, DEMO)
        if method.startswith("clf"):
            add(ov, {"method.generator.ffn_hidden": 512}, DEMO)
    add(["method=ridge_ml", "data=nuswide"], {"method.epochs": 1, "method.pool": ABSENT},
        "project choice: the closed-form baseline gets no GAN preset")

    for data, (n, k) in VS_EPISODES.items():
        ov = ["method=vs_boost", f"data={data}"]
        add(ov, {"method.sampler.n_way": n, "method.sampler.k_shot": k,
                 "method.sampler._target_": "zsl_lightning.data.samplers.EpisodicBatches",
                 "method.sampler.batches_per_step": 5, "method.n_critic": 5,
                 "method.generator.hidden": [4096], "method.discriminator.hidden": [4096],
                 "method.regressor.hidden": [4096], "method.encoder._target_": "zsl_lightning.nn.vs_boost.FeatureEncoder",
                 "method.sm_weight": 1.0, "method.rm_weight": 1.0, "method.lambda_gp": 10.0}, VSBOOST)
        add(ov, {"data.embedding_file": "sent_splits.mat" if data == "cub" else None},
            "VS-Boost: CNN-RNN sentence embeddings for CUB (FLO's att already holds them)")
    return rows


ROWS = _rows()


@cache
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    import tempfile
    from pathlib import Path

    return compose_cfg(list(overrides), Path(tempfile.gettempdir()))


@pytest.mark.parametrize("overrides,key,expected,source", [
    pytest.param(*row, id=f"{' '.join(row[0])}:{row[1]}") for row in ROWS])
def test_config_value(overrides, key, expected, source):
    got = OmegaConf.select(_composed(overrides), key, default=ABSENT)
    if isinstance(got, DictConfig | ListConfig):
        got = OmegaConf.to_container(got, resolve=True)
    if expected is ABSENT:
        assert got is ABSENT, f"{key} should not be set ({source})"
    else:
        assert got == expected, f"{key} = {got!r}, expected {expected!r} ({source})"


def test_table_rows_are_unique():
    keys = [(o, k) for o, k, _, _ in ROWS]
    assert len(keys) == len(set(keys))
