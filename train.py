"""Train and evaluate one method on one benchmark: ``python train.py method=<m> data=<d> [overrides]``.

Multirun sweeps: ``python train.py -m method=clswgan,vaegan``; Optuna: ``hparams_search=optuna_clswgan``.
Everything is composed from ``conf/train.yaml``; see README.md.
"""

import os

# Idle OpenMP threads spin briefly, then sleep: libgomp's default spin (300k rounds) takes a core from every other
# process on the machine (two runs side by side on 2 cores: 3.4x the same two in sequence), while never spinning
# (OMP_WAIT_POLICY=PASSIVE) makes a lone 2-thread run of small networks 2.3x slower (thread wake-ups); 10k rounds
# costs a lone run ~10 % and keeps side-by-side runs at ~1x (docs/benchmarks.md, "Runs sharing a machine").
# libgomp reads this when torch loads, so it is set before anything imports torch; a user's setting is kept.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from zsl_lightning.pipeline import main_entry  # heavy imports stay out of --help

    return main_entry(cfg)


if __name__ == "__main__":
    main()
