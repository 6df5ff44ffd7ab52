"""Collation on hand-made multiruns: mean ± std over seeds beside the paper, missing cells, test_best apart."""

import csv
import io

import pytest

from tests.report.helpers import LOGGER_CASES, make_job, sweep_config
from zsl_lightning.errors import ConfigError
from zsl_lightning.report import render
from zsl_lightning.report.collate import collate, read_jobs
from zsl_lightning.report.paper import load_papers

SPECS = load_papers()
H = {"zsl_t1": 40.0, "gzsl_u": 10.0, "gzsl_s": 60.0, "gzsl_H": 20.0}


def _table3(root, modes=("val", "val")):
    """jgm_table3 on CUB (the paper's column) and synthetic (not in the paper) for two variants, two seeds."""
    n = 0
    for variant, base in (("jgm_full", 50.0), ("jgm_cvae_cat", 30.0)):
        for data in ("cub", "synthetic"):
            for seed, mode in enumerate(modes):
                h = {k: v + base + 4 * seed for k, v in H.items()}
                make_job(root, n, {"data": data, "variant": variant}, h, seed=seed, mode=mode, experiment="jgm_table3")
                n += 1
    return read_jobs(root)


def _csv(c):
    return list(csv.DictReader(io.StringIO(render.to_csv(c))))


def test_cells_are_mean_and_sample_std_over_seeds_beside_the_paper(tmp_path):
    c = collate(SPECS["jgm.table3"], _table3(tmp_path))
    # full on CUB: zsl_t1 = 90 and 94 -> mean 92, sample std 2.83; the paper prints 54.9 -> Δ +37.1
    assert render.cell_text(c, "full", "CUB", ("zsl_t1",)) == "92.0 ± 2.8 (n=2) · paper 54.9 · Δ +37.1"
    assert render.cell_text(c, "CVAE+CAT", "CUB", ("gzsl_u", "gzsl_s", "gzsl_H")) == (
        "42.0 ± 2.8 / 92.0 ± 2.8 / 52.0 ± 2.8 (n=2) · paper 33.3 / 54.0 / 41.2 · Δ +8.7 / +38.0 / +10.8")
    # a dataset the paper does not have: a column of its own, no paper number
    assert [col.label for col in c.columns] == ["CUB", "AWA1", "AWA2", "SUN", "aPY", "synthetic"]
    assert render.cell_text(c, "full", "synthetic", ("zsl_t1",)) == "92.0 ± 2.8 (n=2)"
    # paper columns and rows without a job: missing, never 0
    assert render.cell_text(c, "CGAN+CAT", "AWA1", ("zsl_t1",)) == "missing · paper 59.6"
    md = render.markdown(c)
    for label in ("CVAE+CAT", "CGAN+CAT", "CVAE+CGAN¹", "w/o L_percept", "full"):
        assert f"| {label} |" in md
    row = next(r for r in _csv(c) if r["row"] == "full" and r["column"] == "CUB" and r["metric"] == "zsl_t1")
    assert (float(row["mean"]), round(float(row["std"]), 3), row["n"], row["paper"]) == (92.0, 2.828, "2", "54.9")
    assert round(float(row["diff"]), 6) == 37.1


def test_interrupted_job_leaves_its_cell_missing_and_the_rest_collates(tmp_path):
    jobs = _table3(tmp_path)
    (tmp_path / "0" / "results.json").unlink()  # full / CUB / seed 0 was interrupted
    import shutil

    shutil.rmtree(tmp_path / "1")  # full / CUB / seed 1: deleted
    c = collate(SPECS["jgm.table3"], read_jobs(tmp_path))
    assert render.ours_text(c, "full", "CUB", ("zsl_t1",)) == "missing"
    assert render.ours_text(c, "full", "synthetic", ("zsl_t1",)) == "92.0 ± 2.8 (n=2)"
    assert len(jobs) == 8 and c.cells[("full", "CUB")].jobs == 1 and c.cells[("full", "CUB")].n == 0
    one = next(r for r in _csv(c) if r["row"] == "full" and r["column"] == "CUB" and r["metric"] == "zsl_t1")
    assert (one["status"], one["n"], one["mean"]) == ("missing", "0", "")


def test_test_selected_runs_are_a_row_of_their_own_marked_everywhere(tmp_path):
    c = collate(SPECS["jgm.table3"], _table3(tmp_path, modes=("val", "test_best")))
    marked = "full [selected on TEST (eval.select=test_best)]"
    assert marked in [r.label for r in c.rows] and c.selection[marked] == "test_best"
    # never averaged together: one seed each
    assert render.ours_text(c, "full", "CUB", ("zsl_t1",)) == "90.0 ± 0.0 (n=1)"
    assert render.ours_text(c, marked, "CUB", ("zsl_t1",)) == "94.0 ± 0.0 (n=1)"
    assert render.paper_text(c, marked, "CUB", ("zsl_t1",)) == "54.9"  # beside the same paper number
    assert "selected on TEST" in render.markdown(c) and "eval.select=test_best" in render.markdown(c)
    assert {r["selection"] for r in _csv(c) if r["row"] == marked} == {"test_best"}
    assert "$^\\dagger$" in render.latex(c)


def test_other_overrides_split_rows_and_seeds_do_not(tmp_path):
    for seed in (0, 1):
        for lr in ("1e-4", "1e-3"):
            make_job(tmp_path, seed * 2 + (lr == "1e-3"), {"data": "cub", "variant": "jgm_full", "method.lr": lr},
                     H, seed=seed, experiment="jgm_table3")
    c = collate(SPECS["jgm.table3"], read_jobs(tmp_path))
    assert {r.label for r in c.rows if "[" in r.label} == {"full [method.lr=1e-4]", "full [method.lr=1e-3]"}
    assert render.ours_text(c, "full [method.lr=1e-3]", "CUB", ("zsl_t1",)) == "40.0 ± 0.0 (n=2)"


def test_a_table_split_over_two_specs_keeps_its_datasets_apart(tmp_path):
    """Gupta et al. Table 2 is two specs (NUS-WIDE, Open Images) of one experiment."""
    from zsl_lightning.report.outputs import collate_dirs

    for seed in (0, 1):
        for i, data in enumerate(("nuswide", "openimages")):
            make_job(tmp_path / "m", seed * 2 + i, {"data": data}, {"zsl_mAP": 20.0 + seed}, seed=seed,
                     method="clf_vaegan", experiment="mlzsl_table2")
    written = collate_dirs([tmp_path / "m"], tmp_path / "out")
    assert set(written) == {"mlzsl.table2", "mlzsl.table2_openimages"}
    nus = (tmp_path / "out" / "mlzsl.table2" / "table.csv").read_text()
    assert "openimages" not in nus and "Open Images" not in nus
    assert "20.5 ± 0.7 (n=2)" in (tmp_path / "out" / "mlzsl.table2" / "table.md").read_text()


def test_zeronas_rows_match_on_the_searched_network_list(tmp_path):
    for i, nets in enumerate(("[g]", "[d]")):
        make_job(tmp_path, i, {"data": "cub", "zeronas.networks": nets}, H, method="zeronas", experiment="zeronas_table3")
    c = collate(SPECS["zeronas.table3"], read_jobs(tmp_path))
    assert not c.unmatched
    assert c.cells[("Fixed D (only G searched)", "CUB")].n == 1 and c.cells[("Fixed G (only D searched)", "CUB")].n == 1


def test_figure_points_average_seeds_and_draw_a_png(tmp_path):
    from zsl_lightning.report import figures

    for seed in (0, 1):
        for k in (1, 2):
            make_job(tmp_path, seed * 2 + k, {"data": "synthetic", "fig3_k": k}, {"zsl_t1": 10.0 * k + seed, "gzsl_H": 5.0},
                     seed=seed, experiment="jgm_fig3", config={"data_info": {"num_test_unseen": 100}})
    spec = SPECS["jgm.fig3"]
    pts = figures.figure_points(spec, read_jobs(tmp_path))
    zsl = [(p["x"], p["mean"], p["n"]) for p in pts if p["metric"] == "zsl_t1"]
    assert zsl == [(100.0, 10.5, 2), (200.0, 20.5, 2)]  # x = k x the number of unseen test features
    png = figures.write_figure(spec, pts, tmp_path / "f.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_guesses_the_table_and_rejects_unknown_ones(tmp_path, capsys):
    from sweep.collate import main

    _table3(tmp_path / "m")
    assert main([str(tmp_path / "m"), "--out", str(tmp_path / "out")]) == 0
    for name in ("table.md", "table.csv", "table.tex"):
        assert (tmp_path / "out" / "jgm.table3" / name).is_file()
    assert "92.0 ± 2.8 (n=2) · paper 54.9" in capsys.readouterr().out
    assert main([str(tmp_path / "m"), "--table", "nope.table9"]) == 2
    assert "nope.table9" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="lists experiment 'mystery'"):
        from zsl_lightning.report.outputs import collate_dirs

        make_job(tmp_path / "x", 0, {"data": "cub"}, H, experiment="mystery")
        collate_dirs([tmp_path / "x"], tmp_path / "out2")


@pytest.mark.parametrize("logger,logged", LOGGER_CASES)
def test_callback_collates_and_logs_a_summary_run_only_with_a_wandb_logger(logger, logged, tmp_path, monkeypatch):
    import zsl_lightning.report.outputs as outputs

    calls = []
    monkeypatch.setattr(outputs, "log_summary_to_wandb", lambda written, *a: calls.append((sorted(written), a)))
    _table3(tmp_path / "multirun")
    outputs.PaperTables().on_multirun_end(sweep_config(tmp_path / "multirun", logger))
    assert (tmp_path / "multirun" / "paper_tables" / "jgm.table3" / "table.md").is_file()
    out = tmp_path / "multirun" / "paper_tables"
    assert calls == ([(["jgm.table3"], ("p", "train-multirun", out))] if logged else [])


def test_callback_does_not_fail_the_sweep_when_nothing_collates(tmp_path, caplog):
    from zsl_lightning.report.outputs import PaperTables

    make_job(tmp_path / "multirun", 0, {"data": "cub"}, H, experiment="not_a_paper_table")
    PaperTables().on_multirun_end(sweep_config(tmp_path / "multirun", None))
    assert "could not collate" in caplog.text and not (tmp_path / "multirun" / "paper_tables").exists()


def test_wandb_summary_run_holds_the_table_and_the_figure_offline(tmp_path, monkeypatch):
    """The offline run's files: the CSV as a wandb.Table (media/table/...table.json) and the PNG."""
    import json

    pytest.importorskip("wandb")
    from zsl_lightning.report.outputs import log_summary_to_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "paper_tables" / "jgm.table3"
    out.mkdir(parents=True)
    (out / "table.csv").write_text("row,column,mean\nfull,CUB,92.0\n")
    from zsl_lightning.report import figures

    spec = SPECS["jgm.fig3"]
    png = figures.write_figure(spec, [{"facet": "", "series": "s", "metric": "zsl_t1", "x": 1.0, "mean": 1.0,
                                       "std": 0.0, "n": 2}], out / "figure.png")
    log_summary_to_wandb({"jgm.table3": [out / "table.csv", png]}, "p", "g", tmp_path / "paper_tables")
    run_dir = next((tmp_path / "paper_tables" / "wandb").glob("offline-run-*"))
    tables = list((run_dir / "files" / "media" / "table").rglob("*.table.json"))
    assert tables and json.loads(tables[0].read_text())["data"] == [["full", "CUB", "92.0"]]
    assert list((run_dir / "files" / "media" / "images").rglob("*.png"))


def test_two_multiruns_of_one_table_join_without_splitting_rows(tmp_path):
    """zeronas_table1 (NAS rows) + zeronas_table1_fix (FIX rows): the experiment name is not a row key."""
    for seed in (0, 1):
        make_job(tmp_path / "nas", seed, {"data": "cub", "zeronas": "clswgan"}, H, seed=seed, method="zeronas",
                 experiment="zeronas_table1")
        make_job(tmp_path / "fix", seed, {"data": "cub", "method": "clswgan"}, H, seed=seed,
                 experiment="zeronas_table1_fix")
    c = collate(SPECS["zeronas.table1"], read_jobs(tmp_path / "nas", tmp_path / "fix"))
    assert not c.unmatched and not any("[" in r.label for r in c.rows)
    assert c.cells[("f-CLSWGAN NAS", "CUB")].n == 2 and c.cells[("f-CLSWGAN FIX", "CUB")].n == 2
    assert render.cell_text(c, "f-CLSWGAN NAS", "CUB", ("zsl_t1",)) == "40.0 ± 0.0 (n=2) · paper 60.2 · Δ -20.2"
