"""Train and evaluate one method on one benchmark: ``python train.py method=<m> data=<d> [overrides]``.

Multirun sweeps: ``python train.py -m method=clswgan,vaegan``; Optuna: ``hparams_search=optuna_clswgan``.
Everything is composed from ``conf/train.yaml``; see README.md.
"""

import os

# Idle OpenMP threads sleep instead of spinning: a spinning thread takes a core from every other process on the
# machine (two runs side by side on 2 cores: 4.9x -> 1.0x of the same two in sequence, docs/benchmarks.md). libgomp
# reads this when torch loads, so it is set before anything imports torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from zsl_lightning.pipeline import main_entry  # heavy imports stay out of --help

    return main_entry(cfg)


if __name__ == "__main__":
    main()
