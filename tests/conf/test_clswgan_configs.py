"""f-CLSWGAN on CUB: the released script's 312-d attributes (data=cub) vs the paper's 1,024-d CNN-RNN sentence
embeddings (data=cub_sent, conf/preset/clswgan_cub_sent.yaml), and which experiment uses which."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.helpers import compose_cfg, shrink, write_sent_splits, write_xlsa17
from zsl_lightning.pipeline import build_datamodule, run


def _sweep(cfg) -> dict[str, list[str]]:
    return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}


@pytest.mark.parametrize("data,embedding_file", [("cub", None), ("cub_sent", "sent_splits.mat")])
def test_cub_and_cub_sent_share_the_released_cub_hyperparameters(tmp_path, data, embedding_file):
    cfg = compose_cfg(["method=clswgan", f"data={data}"], tmp_path)
    assert cfg.data.name == "CUB"
    assert cfg.data.get("embedding_file") == embedding_file
    # the released CUB script's values (REFERENCE.md), for both class embeddings
    assert (cfg.method.epochs, cfg.method.cls_weight, cfg.method.optimizer_g.lr, cfg.eval.syn_num) == (
        56, 0.01, 1e-4, 300)


def test_paper_experiment_uses_sentences_on_cub_and_the_released_reference_uses_attributes(tmp_path):
    paper = compose_cfg(["experiment=clswgan_paper"], tmp_path)
    assert paper.method._target_.endswith("CLSWGAN")
    assert _sweep(paper) == {"data": ["cub_sent", "flo", "sun", "awa1"]}  # the datasets of Xian et al. 2018
    assert "cub" in _sweep(compose_cfg(["experiment=reference_single_label"], tmp_path))["data"]
    # ZeroNAS states 312-d attributes for CUB (Sec. 4): its FIX rows keep data=cub
    assert "cub" in _sweep(compose_cfg(["experiment=zeronas_table1_fix"], tmp_path))["data"]


def test_cub_sent_runs_on_sentence_embeddings_from_a_sent_splits_file(tmp_path, cache_dir):
    """A tiny CUB in the xlsa17 layout with a sent_splits.mat of 20-d "sentences" (6-d attributes in
    att_splits.mat): the class embeddings, their dimension and the noise dimension (= embedding dim, the
    released code's nz = attSize) come from sent_splits.mat, and a shrunken f-CLSWGAN runs end to end."""
    root = tmp_path / "xlsa17"
    d = write_xlsa17(root, "CUB", n_classes=10, n_unseen=3, n_val=2, per_class=12, dim=16, att_dim=6)
    sent = write_sent_splits(d, dim=20)
    overrides = ["method=clswgan", "data=cub_sent", f"data.root={root}", "method.epochs=1", "eval.every=1",
                 "eval.syn_num=8", "eval.classifier.epochs=1", "method.pretrain.epochs=1",
                 "method.sampler.batch_size=16"]
    cfg = compose_cfg(overrides, tmp_path / "out", cache_dir)
    dm = build_datamodule(cfg)
    emb = dm.split("test").class_embeddings.numpy()
    want = sent.T / np.linalg.norm(sent.T, axis=1, keepdims=True)
    assert emb.shape == (10, 20)
    assert np.allclose(emb / np.linalg.norm(emb, axis=1, keepdims=True), want, atol=1e-5)
    res = run(shrink(cfg, 16))
    assert all(np.isfinite(v) for v in res["headline"].values())
    saved = OmegaConf.load(tmp_path / "out" / "config_resolved.yaml")
    assert saved.data_info.embedding_dim == 20
    assert saved.method.noise_dim == 20
