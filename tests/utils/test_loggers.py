"""Loggers write where they should; train/ and test/ keys carry their phase."""

import csv

from tests.helpers import compose_cfg, shrink
from zsl_lightning.pipeline import run


def test_csv_and_tensorboard_loggers_write_both_phases(tmp_path, cache_dir):
    cfg = shrink(compose_cfg(["logger=many", "~logger.wandb", "method.epochs=2", "eval.every=1",
                              "eval.syn_num=8", "eval.classifier.epochs=1"], tmp_path, cache_dir))
    run(cfg)
    dev_rows = list(csv.DictReader(open(tmp_path / "csv" / "dev" / "metrics.csv")))
    test_rows = list(csv.DictReader(open(tmp_path / "csv" / "test" / "metrics.csv")))
    dev_keys = {k for r in dev_rows for k, v in r.items() if v}
    test_keys = {k for r in test_rows for k, v in r.items() if v}
    assert {"val/zsl_t1", "val/gzsl_H", "dev/train/loss_d"} <= dev_keys
    assert {"test/zsl_t1", "test/gzsl_H", "train/loss_g"} <= test_keys
    assert not any(k.startswith("test/") for k in dev_keys)  # the dev phase never sees test data
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
