"""trainer.max_epochs is honoured as method.epochs; the Trainer keys the pipeline owns are refused by name."""

import pytest
from omegaconf import OmegaConf

from tests.helpers import compose_cfg, shrink
from zsl_lightning.errors import ConfigError
from zsl_lightning.pipeline import run
from zsl_lightning.utils.config import reconcile_trainer


def test_max_epochs_sets_method_epochs_exactly(tmp_path):
    cfg = compose_cfg(["trainer.max_epochs=1"], tmp_path)
    reconcile_trainer(cfg)
    ref = compose_cfg(["method.epochs=1"], tmp_path)
    assert cfg.method.epochs == 1 and cfg.trainer.max_epochs == 1
    for node in ("method", "trainer"):  # the same config as method.epochs=1 (so the same fingerprint)
        assert OmegaConf.to_container(cfg[node]) == OmegaConf.to_container(ref[node])


def test_max_epochs_trains_one_epoch_in_each_phase(tmp_path, cache_dir):
    cfg = shrink(compose_cfg(["trainer.max_epochs=1", "eval.syn_num=8", "eval.classifier.epochs=1"],
                             tmp_path / "run", cache_dir))
    res = run(cfg)
    assert [h["epoch"] for h in res["history"]["dev"]] == [1]
    assert res["selection"]["epochs"] == {"zsl": 1, "gzsl": 1}


@pytest.mark.parametrize("overrides,fragment", [
    (["method.epochs=3", "trainer.max_epochs=1"], "set only method.epochs"),
    (["trainer.max_epochs=0"], "positive integer (it sets method.epochs)"),
    (["+trainer.gradient_clip_val=1.0"], "method.grad_clip"),
    (["+trainer.accumulate_grad_batches=4"], "manual optimization"),
    (["+trainer.default_root_dir=/tmp/x"], "hydra.run.dir"),
    (["+trainer.enable_checkpointing=false"], "trainer.enable_checkpointing is set by the pipeline"),
])
def test_trainer_keys_the_pipeline_owns_are_refused(tmp_path, overrides, fragment):
    with pytest.raises(ConfigError) as e:
        reconcile_trainer(compose_cfg(overrides, tmp_path))
    assert fragment in str(e.value)
