"""The process around a run: W&B mode, log filters, matmul precision, CPU threads, which rank writes files."""

from __future__ import annotations

import logging
import os
import warnings

from omegaconf import DictConfig

from zsl_lightning.utils.loggers import wandb_credentials


def configure_environment(cfg: DictConfig) -> None:
    """W&B runs offline unless credentials exist; tests and CI never need a network."""
    if "WANDB_MODE" not in os.environ and not wandb_credentials():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    pl_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertising) for f in pl_log.filters):
        pl_log.addFilter(_DropAdvertising())

    # evaluation is computed identically on every DDP rank (same weights, same seeds): no sync needed
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    import torch

    if torch.cuda.is_available():
        torch.set_float32_matmul_precision(str(cfg.get("matmul_precision", "high")))


class _DropAdvertising:
    """Lightning prints a product tip at every Trainer start; keep the logs about the run."""

    def filter(self, record) -> bool:
        return "litlogger" not in str(record.getMessage())


def is_rank_zero() -> bool:
    """Under DDP every rank evaluates identically; rank 0 alone writes and prints."""
    from pytorch_lightning.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


# ---------------------------------------------------------------------------------------------- CPU threads
log = logging.getLogger(__name__)


def launcher_jobs(hydra_cfg, cores: int) -> int:
    """Jobs that run at once beside this one: the launcher's ``n_jobs`` in a multirun (joblib's meaning:
    -1 = one per core, -2 = all cores but one, ...), 1 in a single run or under a launcher without ``n_jobs``
    (the basic launcher runs jobs one after the other; SLURM gives each job its own CPUs)."""
    if hydra_cfg is None or str(hydra_cfg.get("mode")) not in ("MULTIRUN", "RunMode.MULTIRUN"):
        return 1
    n = (hydra_cfg.get("launcher") or {}).get("n_jobs")
    if n is None or n == 0:
        return 1
    n = int(n)
    return max(1, cores + 1 + n) if n < 0 else n


def choose_threads(cores: int, n_jobs: int = 1, threads: int | None = None,
                   env: str | None = None) -> tuple[int, str]:
    """Intra-op threads of one run and why: an explicit ``threads=`` always wins; else a user's
    ``OMP_NUM_THREADS`` (a value set on purpose, e.g. by pytest's conftest per xdist worker or by joblib's
    loky workers); else ``cores // n_jobs``, at least 1, so that concurrent jobs never ask for more threads
    than the cores they share (oversubscribed OpenMP threads spin and slow every job, issue 16)."""
    if threads is not None:
        return int(threads), "threads="
    if env and env.strip().isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    return max(1, cores // max(1, n_jobs)), "cores ÷ concurrent jobs"


def process_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, cgroups cpusets, SLURM), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows have no affinity API
        return os.cpu_count() or 1


def hydra_runtime_config():
    """Hydra's own config of this job (``None`` outside a Hydra app)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get()
    except Exception:  # not under Hydra (a test driving main_entry with a bare config)
        return None


def openmp_wait() -> str:
    """How idle OpenMP threads wait, as the environment says (``train.py`` sets ``GOMP_SPINCOUNT`` by default)."""
    policy, spin = os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT")
    if policy:
        return policy + (f", GOMP_SPINCOUNT={spin}" if spin else "")
    return f"spin {spin} rounds, then sleep (GOMP_SPINCOUNT)" if spin else "default (libgomp: spin 300k rounds)"


def configure_threads(cfg: DictConfig) -> int:
    """Set this process's intra-op threads (:func:`choose_threads`) and inter-op threads to 1, and log the
    choice. Returns the intra-op count. Inter-op threads can only be set before the first inter-op work: a
    process that runs a second job (a reused joblib worker) keeps what it has."""
    import torch

    from zsl_lightning.utils.schema import check_threads

    check_threads(cfg)
    cores = process_cores()
    n_jobs = launcher_jobs(hydra_runtime_config(), cores)
    n, why = choose_threads(cores, n_jobs, cfg.get("threads"), os.environ.get("OMP_NUM_THREADS"))
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # inter-op work already ran in this process
            pass
    # joblib's loky workers inherit OMP_NUM_THREADS = cores // n_jobs from joblib: the same number
    log.info("CPU threads: %d intra-op (%s; %d cores in this process's affinity, %d concurrent job(s)), %d inter-op, "
             "OpenMP wait policy %s", n, why, cores, n_jobs, torch.get_num_interop_threads(),
             openmp_wait())
    return n
