"""Logs survive a resume: the metric CSV of a killed-and-resumed run has exactly the rows of an uninterrupted one."""

import csv

import pytest

from tests.helpers import compose_cfg, shrink
from zsl_lightning.pipeline import run
from zsl_lightning.utils.csv_logger import keep_rows_before

CRASH = "tests.helpers.CrashAtEpochStart"


def _cfg(out, cache_dir, extra=()):
    return shrink(compose_cfg(["method=clswgan", "method.epochs=4", "eval.every=1", "eval.syn_num=10",
                               "eval.classifier.epochs=1", "eval.select=val", "logger=csv", *extra], out, cache_dir))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("crash_split", [pytest.param("dev", marks=pytest.mark.slow), "test"])
def test_resumed_run_keeps_every_metric_row(tmp_path, cache_dir, crash_split):
    run(_cfg(tmp_path / "ref", cache_dir))
    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(_cfg(out, cache_dir, [f"+callbacks.crash._target_={CRASH}", "+callbacks.crash.epoch=2",
                                  f"+callbacks.crash.split={crash_split}"]))
    run(_cfg(out, cache_dir))
    for phase in ("dev", "test"):
        ref, got = _rows(tmp_path / "ref" / "csv" / phase / "metrics.csv"), _rows(out / "csv" / phase / "metrics.csv")
        assert len(ref) >= 2 and got == ref, phase


def test_keep_rows_before_drops_replayed_epochs(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text("epoch,step,a\n0,5,1.0\n1,10,2.0\n2,15,3.0\n,,\n")
    assert keep_rows_before(p, 2) == ["epoch", "step", "a"]
    assert p.read_text() == "epoch,step,a\n0,5,1.0\n1,10,2.0\n,,\n"
