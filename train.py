"""Train and evaluate one method on one benchmark: ``python train.py method=<m> data=<d> [overrides]``.

Multirun sweeps: ``python train.py -m method=clswgan,vaegan``; Optuna: ``hparams_search=optuna_clswgan``.
Everything is composed from ``conf/train.yaml``; see README.md.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from zsl_lightning.pipeline import main_entry  # heavy imports stay out of --help

    return main_entry(cfg)


if __name__ == "__main__":
    main()
