"""Every method config instantiates and fits a tiny run (new methods are tested for free)."""

from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from tests.helpers import CONF, compose_cfg, shrink
from zsl_lightning.pipeline import run

METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
DATA_FOR_MODE = {"single": "synthetic", "multi": "synthetic_ml"}


def _label_mode(method: str) -> str:
    target = OmegaConf.load(CONF / "method" / f"{method}.yaml").get("_target_")
    if target is None:  # composed from a shared base via its defaults list
        target = compose_cfg([f"method={method}"], Path("/tmp")).method._target_
    return get_class(target).label_modes[0]


def test_registry_is_not_empty():
    assert {"clswgan", "vaegan", "eszsl"} <= set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_method_config_fits_a_tiny_run(method, tmp_path, cache_dir):
    data = DATA_FOR_MODE[_label_mode(method)]
    cfg = shrink(compose_cfg([f"method={method}", f"data={data}", "eval.select=val", "method.epochs=2",
                              "eval.every=1", "eval.syn_num=8", "eval.classifier.epochs=1"], tmp_path, cache_dir))
    res = run(cfg)
    assert res["headline"], res
    assert all(v == v for v in res["headline"].values())  # no NaN
    assert (tmp_path / "results.json").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
