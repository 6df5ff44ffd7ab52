"""conf/paper: every experiment has its table, the cells are the papers', matches name real configs, the docs
blocks agree with the data, bad files give a ConfigError naming the key."""

from pathlib import Path

import pytest
import yaml

from zsl_lightning.errors import ConfigError
from zsl_lightning.report.paper import load_file, load_papers, tables_for_experiment

ROOT = Path(__file__).resolve().parents[2]
SPECS = load_papers()
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_has_a_paper_table_and_the_collation_callback(experiment):
    assert tables_for_experiment(experiment, SPECS), (
        f"conf/experiment/{experiment}.yaml has no table in conf/paper/*.yaml: add one listing it under "
        "'experiments' (schema: zsl_lightning/report/paper.py)")
    text = (ROOT / "conf" / "experiment" / f"{experiment}.yaml").read_text()
    assert "zsl_lightning.report.outputs.PaperTables" in text


def test_every_table_names_existing_experiments_and_config_choices():
    groups = {"method", "data", "variant", "zeronas"}
    for spec in SPECS.values():
        for exp in spec.experiments:
            assert (ROOT / "conf" / "experiment" / f"{exp}.yaml").is_file(), (spec.id, exp)
        for axis in (*spec.rows, *spec.columns):
            for key, value in (axis.match or {}).items():
                if key in groups:
                    assert (ROOT / "conf" / key / f"{value}.yaml").is_file(), (spec.id, axis.label, key, value)


def test_cells_are_the_papers_numbers_as_printed():
    """Spot checks against the papers' own tables (shared/papers)."""
    assert SPECS["jgm.table3"].cells[("CVAE+CAT", "CUB")] == (48.7, 33.3, 54.0, 41.2)
    assert SPECS["jgm.table3"].cells[("w/o L_percept", "CUB")] == (51.1, 40.5, 7.8, 43.9)  # "7.8" as printed
    assert SPECS["jgm.table2"].cells[("f-CLSWGAN", "AWA2")] == (None, None, None, None)  # "-" in the paper
    assert SPECS["vs_boost.table4"].cells[("full (b + c)", "CUB")] == (68.0, 68.7, 68.3)
    assert SPECS["vs_boost.table2"].cells[("VS-Boost", "CUB")] == (68.0, 68.7, 68.4)
    assert SPECS["zeronas.table2"].cells[("f-CLSWGAN FIX", "FLO")] == (57.9, 74.9, 65.3)  # A_s / A_u / A_h
    assert SPECS["zeronas.table3"].cells[("Fixed G (only D searched)", "AWA2")] == (68.6, 57.8, 64.1, 60.8)
    assert SPECS["gbe.table3"].cells[("ours", "NUS-WIDE")] == (28.7, 10.3)
    assert SPECS["mlzsl.table1"].cells[("CLF in f-VAEGAN", "NUS-WIDE")] == (32.8, 29.3, 25.7, 18.9, 22.0, 8.9)
    assert SPECS["mlzsl.table3"].paper_value("Our approach", "MS COCO", "zsl_F1@5") is None
    assert SPECS["gbe.table2"].paper_value("GBE-MLZSL", "Open Images", "gzsl_mAP") == 81.4


def test_docs_paper_tables_agree_with_conf_paper():
    from scripts.render_paper_tables import render_docs, render_readme

    assert render_docs(check=True) == []
    assert render_readme(check=True) == []


def _write(tmp_path, table: dict) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"paper": "p", "tables": {"x.table1": table}}))
    return f


GOOD = {"kind": "table", "experiments": ["jgm_table3"], "panels": [{"title": "T1", "metrics": ["zsl_t1", "gzsl_H"]}],
        "columns": [{"label": "CUB", "match": {"data": "cub"}}],
        "rows": [{"label": "full", "match": {"variant": "jgm_full"}, "paper": {"CUB": [1.0, 2.0]}}]}


@pytest.mark.parametrize("change,message", [
    ({"kind": "chart"}, "tables.x.table1.kind: 'chart' is not one of"),
    ({"rows": [{"label": "full", "match": {}, "paper": {"CUB": [1.0]}}]}, "rows[0].paper.CUB: 1 value(s) for 2 metric(s)"),
    ({"rows": [{"label": "full", "match": {}, "paper": {"AWA": [1.0, 2.0]}}]}, "no column labelled 'AWA'"),
    ({"rows": [{"label": "full", "paper": {}}]}, "rows[0]: missing key 'match'"),
    ({"columns": [{"label": "CUB", "match": None}]}, "a column needs a match"),
    ({"panels": [{"title": "T1"}]}, "panels[0]: missing key 'metrics'"),
    ({"panels": [{"title": "T1", "metrics": []}]}, "panels[0]: needs a non-empty 'metrics'"),
    ({"rows": [{"label": "a", "match": None}, {"label": "a", "match": None}]}, "labels must be unique"),
])
def test_bad_paper_files_name_the_key(tmp_path, change, message):
    f = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ConfigError) as e:
        load_file(f)
    assert message in str(e.value) and str(f) in str(e.value)


def test_good_file_loads(tmp_path):
    spec = load_file(_write(tmp_path, GOOD))["x.table1"]
    assert spec.paper_value("full", "CUB", "gzsl_H") == 2.0 and spec.metrics == ("zsl_t1", "gzsl_H")
