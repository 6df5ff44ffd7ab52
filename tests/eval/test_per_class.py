"""Per-class numbers at the selected epoch: hand-computed vectors, and ``results.json["per_class"]`` agreeing
with the headline it breaks down."""

import math

import pytest
import torch

from tests.helpers import compose_cfg, shrink
from zsl_lightning.data.split import FeatureSplit
from zsl_lightning.eval.metrics import class_accuracies, cross_rate, per_class_accuracy
from zsl_lightning.eval.per_class import (
    multi_label_details,
    per_class_results,
    positives,
    single_label_details,
    table_rows,
)
from zsl_lightning.pipeline import run


def test_class_accuracies_by_hand():
    target = torch.tensor([3, 3, 3, 7, 7, 5])
    pred = torch.tensor([3, 7, 3, 7, 1, 5])
    acc, n = class_accuracies(pred, target, torch.tensor([7, 3, 9]))
    assert acc[:2].tolist() == [0.5, 2 / 3] and math.isnan(acc[2])  # class 9 has no test image
    assert n.tolist() == [2, 3, 0]
    assert float(acc[:2].mean()) == pytest.approx(per_class_accuracy(pred, target, torch.tensor([7, 3, 9])))


def test_cross_rate_by_hand():
    assert cross_rate(torch.tensor([0, 4, 5, 1]), torch.tensor([4, 5])) == 0.5
    assert math.isnan(cross_rate(torch.empty(0, dtype=torch.long), torch.tensor([4])))


def _split():
    # seen 0, 1 (2 test images each); unseen 2, 3 (2 and 1 test images)
    z = torch.zeros(1, 2)
    return FeatureSplit("test", z, torch.tensor([0]), torch.zeros(4, 2), torch.tensor([0, 0, 1, 1]),
                        torch.zeros(3, 2), torch.tensor([2, 2, 3]), torch.zeros(4, 2), torch.tensor([0, 1]),
                        torch.tensor([2, 3]), class_names=["cat", "dog", "okapi", "quagga"])


def test_single_label_details_and_gzsl_confusion_by_hand():
    split = _split()
    d = single_label_details(split, pred_zsl=torch.tensor([2, 3, 3]), pred_u=torch.tensor([0, 2, 1]),
                             pred_s=torch.tensor([0, 2, 1, 1]))
    assert d["zsl"]["unseen"]["value"].tolist() == [50.0, 100.0]
    assert d["gzsl"]["unseen"]["value"].tolist() == [50.0, 0.0] and d["gzsl"]["unseen"]["n"].tolist() == [2, 1]
    assert d["gzsl"]["seen"]["value"].tolist() == [50.0, 100.0]
    conf = d["gzsl"]["confusion"]
    assert conf["seen_to_unseen"] == 25.0  # 1 of 4 seen images predicted as class 2
    assert conf["unseen_to_seen"] == pytest.approx(200 / 3)  # 2 of 3 unseen images predicted as 0 or 1
    assert (conf["seen_images"], conf["unseen_images"]) == (4, 3)


def test_per_class_results_json_names_epochs_and_missing_values():
    split = _split()
    d = single_label_details(split, torch.tensor([2, 3, 3]), torch.tensor([0, 2, 1]), torch.tensor([0, 2, 1, 1]))
    d["zsl"]["unseen"]["value"][1] = float("nan")
    res = per_class_results({4: d, 6: {}}, {"zsl": 4, "gzsl": 6}, "single", split.class_names)
    assert res["zsl"] == {"epoch": 4, "unseen": {"class": [2, 3], "name": ["okapi", "quagga"], "value": [50.0, None],
                                                 "n": [2, 1]}}
    assert "gzsl" not in res  # no details kept at epoch 6: left out, never invented
    assert res["metric"] == "top-1 accuracy (%)"
    assert table_rows(res) == [("zsl", "unseen", 2, "okapi", 50.0, 2), ("zsl", "unseen", 3, "quagga", None, 1)]


def test_multi_label_details_split_gzsl_labels_into_seen_and_unseen():
    class S:
        seen_classes = torch.tensor([0, 1])

    labels = torch.tensor([[1, -1, 1], [1, 1, 0], [-1, 1, 1]], dtype=torch.int8)
    assert positives(labels, chunk_elems=3).tolist() == [2, 2, 2]  # one row per block
    ap = torch.tensor([0.5, 1.0, 0.25], dtype=torch.float64)
    g = multi_label_details(S, "gzsl", torch.tensor([0, 1, 2]), ap, labels)
    assert g["seen"]["class"].tolist() == [0, 1] and g["seen"]["value"].tolist() == [50.0, 100.0]
    assert g["unseen"]["class"].tolist() == [2] and g["unseen"]["value"].tolist() == [25.0]
    assert list(multi_label_details(S, "zsl", torch.tensor([2]), ap[2:], labels[:, 2:])) == ["unseen"]
    assert list(multi_label_details(S, "std", torch.tensor([0, 1, 2]), ap, labels)) == ["seen"]


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values)


def test_single_label_run_breaks_its_headline_down_per_class(tmp_path, cache_dir):
    res = run(shrink(compose_cfg(["method=eszsl", "eval.select=val"], tmp_path, cache_dir)))
    pc, head, epochs = res["per_class"], res["headline"], res["selection"]["epochs"]
    assert pc["zsl"]["epoch"] == epochs["zsl"] and pc["gzsl"]["epoch"] == epochs["gzsl"]
    assert _mean(pc["zsl"]["unseen"]["value"]) == pytest.approx(head["zsl_t1"], abs=1e-9)
    assert _mean(pc["gzsl"]["unseen"]["value"]) == pytest.approx(head["gzsl_u"], abs=1e-9)
    assert _mean(pc["gzsl"]["seen"]["value"]) == pytest.approx(head["gzsl_s"], abs=1e-9)
    assert set(pc["gzsl"]["seen"]["class"]).isdisjoint(pc["gzsl"]["unseen"]["class"])
    assert all(isinstance(n, str) for n in pc["zsl"]["unseen"]["name"])
    conf = pc["gzsl"]["confusion"]
    # an image sent to the other side is wrong: the share of right images and that share add up to at most 100
    for group, cross in (("unseen", "unseen_to_seen"), ("seen", "seen_to_unseen")):
        g = pc["gzsl"][group]
        right = sum(v * n for v, n in zip(g["value"], g["n"], strict=True)) / sum(g["n"])
        assert 0 <= conf[cross] <= 100 - right + 1e-9
    assert conf["unseen_images"] == sum(pc["gzsl"]["unseen"]["n"])


def test_multi_label_run_keeps_per_label_ap_at_the_selected_epoch(tmp_path, cache_dir):
    res = run(shrink(compose_cfg(["method=ridge_ml", "data=synthetic_ml", "eval.select=last"], tmp_path, cache_dir)))
    pc, head = res["per_class"], res["headline"]
    assert pc["metric"] == "AP (%)"
    assert _mean(pc["zsl"]["unseen"]["value"]) == pytest.approx(head["zsl_mAP"], abs=1e-9)
    both = pc["gzsl"]["unseen"]["value"] + pc["gzsl"]["seen"]["value"]
    assert _mean(both) == pytest.approx(head["gzsl_mAP"], abs=1e-9)
    assert len(pc["zsl"]["unseen"]["class"]) == len(pc["gzsl"]["unseen"]["class"])
