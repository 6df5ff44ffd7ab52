"""ZeroNAS experiment configs (conf/experiment/zeronas_*.yaml): each composes with its first sweep
combination, sweeps the grid its table / figure needs, and sets what its runs are told apart by."""

import itertools

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.helpers import CONF, compose_cfg
from zsl_lightning.errors import ConfigError
from zsl_lightning.utils.config import check_mandatory_values

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("zeronas_*.yaml"))
# experiment -> its sweep's params (each value list in order) as the paper's table / figure needs them
GRIDS = {
    "zeronas_table1": {"data": ["cub", "flo", "sun", "awa2"], "zeronas": ["clswgan", "vaegan", "vs_boost"]},
    "zeronas_table1_fix": {"data": ["cub", "flo", "sun", "awa2"],
                           "method": ["clswgan", "vaegan", "tfvaegan", "vs_boost"]},
    "zeronas_table2": {"data": ["cub", "flo", "sun", "awa2"], "zeronas": ["clswgan", "vaegan", "vs_boost"]},
    "zeronas_table3": {"data": ["cub", "flo", "sun", "awa2"], "zeronas.networks": ["[g]", "[d]"]},
    "zeronas_fig5": {"data": ["cub", "flo", "sun", "awa2"], "fig5_source": ["cub", "flo", "sun", "awa2"]},
    "zeronas_fig6": {"data": ["cub", "flo", "sun", "awa2"], "method": ["clswgan", "zeronas"]},
    "zeronas_fig4": {"method": ["clswgan", "zeronas"]},  # on AWA (AWA2) only
}
# what the command line must add besides the sweep (a mandatory value)
EXTRA = {"zeronas_fig5": ["fig5_genotypes=/genotypes"]}


def sweep_values(params) -> dict[str, list[str]]:
    """Each sweep param's values, parsed as Hydra's basic sweeper does (``[g],[d]`` is two lists)."""
    parser = OverridesParser.create()
    return {k: list(parser.parse_overrides([f"{k}={v}"])[0].sweep_string_iterator()) for k, v in params.items()}


def test_every_zeronas_experiment_is_covered():
    assert EXPERIMENTS == sorted(GRIDS)


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_first_sweep_combination_composes(tmp_path, exp):
    first = [f"{k}={v[0]}" for k, v in GRIDS[exp].items()]
    cfg = compose_cfg([f"experiment={exp}", *first, *EXTRA.get(exp, [])], tmp_path)
    assert sweep_values(cfg.hydra.sweeper.params) == GRIDS[exp]  # the sweep is the grid of the table
    check_mandatory_values(cfg)
    choices = cfg.hydra.runtime.choices
    assert cfg.task_name == exp and choices.data == ("awa2" if exp == "zeronas_fig4" else "cub")
    if exp in ("zeronas_table1", "zeronas_table2"):
        # NAS row: method=zeronas around f-CLSWGAN, both networks searched
        assert (choices.method, choices.zeronas) == ("zeronas", "clswgan")
        assert cfg.run_plan.endswith("ZeroNASPlan") and list(cfg.zeronas.networks) == ["g", "d"]
    elif exp == "zeronas_table1_fix":  # FIX row: the base itself, no search
        assert choices.method == "clswgan" and "run_plan" not in cfg
    elif exp == "zeronas_table3":  # "Fixed D": only G searched
        assert list(cfg.zeronas.networks) == ["g"] and choices.zeronas == "clswgan"
    elif exp == "zeronas_fig5":  # the genotype of the (source, target) pair, no search
        assert cfg.zeronas.genotype == "/genotypes/cub_to_cub"
    elif exp == "zeronas_fig6":
        assert choices.method == "clswgan" and cfg.eval.every == 1
        assert cfg.hydra.callbacks.zeronas_fig6_plot._target_ == "sweep.plot_zeronas_fig6.Fig6Plot"
    elif exp == "zeronas_fig4":  # FIX first; each job saves its points, the multirun's end draws the pair
        assert choices.method == "clswgan" and cfg.callbacks.feature_plot.save_features
        assert cfg.callbacks.feature_plot.per_class == 100  # Sec. 4.2.2: 100 samples per unseen class
        assert cfg.hydra.callbacks.fig4_pair._target_ == "sweep.plot_zeronas_fig4.ZeroNASFig4Plot"


def test_table3_rows_search_one_network_each(tmp_path):
    cfg = compose_cfg(["experiment=zeronas_table3", "zeronas.networks=[d]", "data=sun"], tmp_path)
    assert list(cfg.zeronas.networks) == ["d"]  # "Fixed G"
    assert OmegaConf.select(cfg, "hydra.runtime.choices.data") == "sun"


def test_fig5_names_the_genotype_of_each_pair_and_needs_the_directory(tmp_path):
    pairs = {}
    for src, tgt in itertools.product(["flo", "awa2"], ["sun"]):
        cfg = compose_cfg(["experiment=zeronas_fig5", f"fig5_source={src}", f"data={tgt}", "fig5_genotypes=/g"],
                          tmp_path)
        pairs[src] = cfg.zeronas.genotype
    assert pairs == {"flo": "/g/flo_to_sun", "awa2": "/g/awa2_to_sun"}
    with pytest.raises(ConfigError, match="fig5_genotypes"):
        check_mandatory_values(compose_cfg(["experiment=zeronas_fig5"], tmp_path))
