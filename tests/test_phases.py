"""A run is a plan of named phases; a method class may add phases that change the config of later ones."""

import json

import pytest
from omegaconf import open_dict

from tests.helpers import compose_cfg
from zsl_lightning.errors import ConfigError
from zsl_lightning.methods.eszsl import ESZSL
from zsl_lightning.pipeline import phase_plan, run

FAST = ["method=eszsl", "method.grid=null", "eval.classifier.epochs=1"]


def _search(state) -> None:
    """Stands in for ZeroNAS's search: writes its result to the run dir; later phases build from it."""
    found = {"gamma_exp": 2.0, "lambda_exp": -1.0}
    (state.out / "genotype.json").write_text(json.dumps(found))
    with open_dict(state.cfg):
        state.cfg.method.update(found)


class SearchedESZSL(ESZSL):
    built: list = []  # (phase, gamma_exp, lambda_exp) of every instance the run builds

    def __init__(self, **kw):
        super().__init__(**kw)
        SearchedESZSL.built.append((self.context.phase, self.gamma_exp, self.lambda_exp))

    @classmethod
    def phase_plan(cls, select):
        return ("search", *super().phase_plan(select))

    @classmethod
    def custom_phases(cls):
        return {"search": _search}


class UnknownPhaseESZSL(ESZSL):
    @classmethod
    def phase_plan(cls, select):
        return ("warmup", "test")


class RedefinesTestESZSL(SearchedESZSL):
    @classmethod
    def custom_phases(cls):
        return {"search": _search, "test": _search}


def _target(cls) -> str:
    return f"method._target_={__name__}.{cls.__name__}"


@pytest.mark.parametrize("select, dev_only, expected", [
    ("val", False, ["search", "dev", "test"]),
    ("val", True, ["search", "dev"]),  # a sweep's trial ends after the dev phase
    ("last", False, ["search", "test"]),
    ("test_best", False, ["search", "test"]),
])
def test_a_method_class_extends_the_plan_of_the_selection_mode(tmp_path, select, dev_only, expected):
    cfg = compose_cfg([*FAST, _target(SearchedESZSL), f"eval.select={select}", f"eval.dev_only={dev_only}"],
                      tmp_path)
    assert [name for name, _ in phase_plan(cfg)] == expected


def test_the_default_plan_without_a_custom_method(tmp_path):
    assert [n for n, _ in phase_plan(compose_cfg(FAST, tmp_path))] == ["dev", "test"]
    assert [n for n, _ in phase_plan(compose_cfg([*FAST, "eval.select=last"], tmp_path))] == ["test"]


def test_a_phase_output_becomes_the_config_of_the_later_phases(tmp_path, cache_dir):
    SearchedESZSL.built.clear()
    res = run(compose_cfg([*FAST, _target(SearchedESZSL)], tmp_path, cache_dir))
    assert json.loads((tmp_path / "genotype.json").read_text()) == {"gamma_exp": 2.0, "lambda_exp": -1.0}
    assert SearchedESZSL.built == [("dev", 2.0, -1.0), ("test", 2.0, -1.0)]  # the config said 0.0, 0.0
    assert (tmp_path / "dev" / "selection.json").is_file() and set(res["headline"]) >= {"zsl_t1", "gzsl_H"}


@pytest.mark.parametrize("cls, match", [
    (UnknownPhaseESZSL, r"phase plan names \['warmup'\]"),
    (RedefinesTestESZSL, r"redefines the built-in phase\(s\) \['test'\]"),
])
def test_a_plan_must_name_phases_that_exist_once(tmp_path, cls, match):
    with pytest.raises(ConfigError, match=match):
        phase_plan(compose_cfg([*FAST, _target(cls), "eval.select=last"], tmp_path))
