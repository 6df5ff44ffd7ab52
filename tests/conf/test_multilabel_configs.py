"""Multi-label configs: the paper's per-dataset settings (Gupta et al. Sec. 4.1), data presets and the
experiment configs of Tables 1-3."""

import pytest
from omegaconf import OmegaConf

from tests.helpers import compose_cfg

ML = [f"{f}_{g}" for g in ("clswgan", "vaegan") for f in ("alf", "flf", "clf")]


@pytest.mark.parametrize("method", ML)
@pytest.mark.parametrize("data,batch,epochs,cls_batch,cls_lr,top_k", [
    ("nuswide", 64, 50, 300, 1e-3, [3, 5]), ("openimages", 128, 1, 100, 1e-4, [10, 20]),
    ("coco", 64, 70, 100, 1e-3, [3, 5])])
def test_paper_settings_per_dataset(method, data, batch, epochs, cls_batch, cls_lr, top_k, tmp_path):
    cfg = compose_cfg([f"method={method}", f"data={data}", "paths.data_dir=/data"], tmp_path)
    assert cfg.method.sampler.batch_size == batch and cfg.method.epochs == epochs
    assert cfg.eval.classifier.batch_size == cls_batch and cfg.eval.classifier.lr == cls_lr
    assert cfg.eval.classifier.epochs == 50
    assert cfg.method.optimizer_g.lr == 1e-4 and cfg.method.optimizer_d.lr == 1e-4
    assert list(cfg.method.optimizer_g.betas) == [0.5, 0.999]
    assert list(cfg.data.top_k) == top_k
    assert cfg.method.generator.hidden == [4096]
    assert cfg.method.gzsl_real is True  # the paper (the released code: false)
    if method.startswith("clf"):
        assert cfg.method.generator.heads == 8 and cfg.method.generator.ffn_hidden == 8192
    if method.endswith("clswgan"):
        assert cfg.method.cls_weight == 0.1
    else:
        assert cfg.method.lambda_gp == 10.0
        # the paper: the whole feature-synthesis network uses Adam (0.5, 0.999); released code: default betas
        assert list(cfg.method.optimizer_e.betas) == [0.5, 0.999] and cfg.method.optimizer_e.lr == 1e-4


def test_nuswide_default_root_and_files(tmp_path):
    cfg = compose_cfg(["method=clf_vaegan", "data=nuswide", "paths.data_dir=/data"], tmp_path)
    assert cfg.data.root == "/data/NUS-WIDE" and cfg.data.label_space == "nuswide"
    assert (cfg.data.min_positives, cfg.data.max_positives, cfg.data.preprocess) == (1, 10, "minmax")


@pytest.mark.parametrize("name,params", [
    ("mlzsl_table1", {"method": "alf_clswgan,flf_clswgan,clf_clswgan,alf_vaegan,flf_vaegan,clf_vaegan"}),
    ("mlzsl_table2", {"data": "nuswide,openimages"})])
def test_table_experiments_are_multiruns(name, params, tmp_path):
    cfg = compose_cfg([f"experiment={name}", "paths.data_dir=/data"], tmp_path)
    assert OmegaConf.to_container(cfg.hydra.sweeper.params) == params
    assert cfg.method.generator._target_.endswith("CLF")


def test_table3_experiment_is_coco(tmp_path):
    cfg = compose_cfg(["experiment=mlzsl_table3", "paths.data_dir=/data"], tmp_path)
    assert cfg.data.name == "COCO" and cfg.method.epochs == 70


def test_table4_experiment_is_standard_nuswide(tmp_path):
    cfg = compose_cfg(["experiment=mlzsl_table4", "paths.data_dir=/data"], tmp_path)
    assert cfg.data.name == "NUS-WIDE" and cfg.data.mode == "standard" and cfg.data.standard_labels_key == "labels_81"
    assert cfg.method.generator._target_.endswith("CLF") and cfg.method._target_.endswith("vaegan.VAEGAN")
    # the NUS-WIDE settings of Sec. 4.1 apply (the paper gives no separate ones for Table 4)
    assert cfg.method.epochs == 50 and cfg.eval.classifier.batch_size == 300 and list(cfg.data.top_k) == [3, 5]


@pytest.mark.parametrize("method", ML)
def test_synthetic_ml_preset_layers(method, tmp_path):
    """conf/preset/mlzsl/synthetic_ml.yaml for all six, then the per-GAN lr / encoder and CLF's FFN."""
    cfg = compose_cfg([f"method={method}", "data=synthetic_ml"], tmp_path)
    assert cfg.method.epochs == 40 and cfg.method.noise_dim == 16 and cfg.eval.every == 10
    assert cfg.method.generator.hidden == [256] and cfg.method.discriminator.hidden == [256]
    assert cfg.method.optimizer_g.lr == (2e-3 if method.endswith("clswgan") else 1e-3)
    assert ("encoder" in cfg.method) == method.endswith("vaegan")
    if method.endswith("vaegan"):
        assert cfg.method.encoder.hidden == [256]
    if method.startswith("clf"):
        assert cfg.method.generator.ffn_hidden == 512


def test_ridge_baseline_gets_no_gan_preset(tmp_path):
    cfg = compose_cfg(["method=ridge_ml", "data=nuswide"], tmp_path)
    assert cfg.method.epochs == 1 and "pool" not in cfg.method
