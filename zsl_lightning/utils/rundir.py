"""The run directory: what it holds, the config fingerprint that guards resuming it, checkpoint records.

``config_resolved.yaml``   the composed config with the data-derived dims filled in
``dev/``                   (``eval.select=val``) the validation phase: checkpoints, logs, ``selection.json``
``checkpoints/``           ``last.ckpt``, ``best_zsl.ckpt``, ``best_gzsl.ckpt`` of the test phase
``csv/``                   metric logs (and tensorboard/ or wandb/ when enabled)
``results.json``           headline numbers, how they were selected, full evaluation histories

A finished dev phase (``selection.json``) and a phase's ``last.ckpt`` both carry a fingerprint of the config
(:func:`config_fingerprint`): a rerun with different overrides in the same directory is refused instead of
silently reusing them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from zsl_lightning.errors import ConfigError
from zsl_lightning.utils.io import atomic_write_text


def resolved_config(cfg: DictConfig) -> dict:
    """The resolved config as plain containers, without Hydra's own node."""
    out = {}
    for k in cfg:
        if k == "hydra":
            continue
        v = cfg[k]
        out[k] = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
    return out


def write_resolved_config(out: Path, cfg: DictConfig) -> None:
    atomic_write_text(out / "config_resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved_config(cfg))))


#: config keys that do not change what a run computes: where files go, what is printed or logged, what only
#: ends a run early (eval.dev_only), and how many CPU threads compute it (``threads``: the automatic choice is
#: not in the config either). Everything else is part of the fingerprint.
FINGERPRINT_EXCLUDE = ("hydra", "paths", "resume", "ckpt_path", "print_config", "logger", "callbacks", "tags",
                       "task_name", "optimized_metric", "data_info", "data.root", "data.cache_dir", "eval.dev_only",
                       "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps",
                       # the same computation, compiled or eager: a compiled run resumes eagerly and vice versa
                       "trainer.compile", "trainer.cuda_graphs", "threads")

#: keys added after runs already existed, at the value that computes what those runs computed: left out of the
#: fingerprint at that value, so a run directory made before the key existed still resumes
FINGERPRINT_NEUTRAL = {"eval.share_synthesis": False, "method.recon_reduction": "sum", "data.mode": "zsl",
                       "data.standard_labels_key": "labels_81"}


def _pop(conf: dict, key: str, only_if=...) -> None:
    *parents, leaf = key.split(".")
    node = conf
    for k in parents:
        node = node.get(k) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node and (only_if is ... or node[leaf] == only_if):
        node.pop(leaf)


def fingerprinted_config(cfg: DictConfig) -> dict:
    """The resolved config without :data:`FINGERPRINT_EXCLUDE` (and :data:`FINGERPRINT_NEUTRAL` at its value)."""
    conf = resolved_config(cfg)
    for key in FINGERPRINT_EXCLUDE:
        _pop(conf, key)
    for key, value in FINGERPRINT_NEUTRAL.items():
        _pop(conf, key, value)
    return conf


def config_fingerprint(cfg: DictConfig) -> str:
    """A short hash of :func:`fingerprinted_config`: equal for two runs that compute the same thing."""
    blob = json.dumps(fingerprinted_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resume_enabled(cfg: DictConfig) -> bool:
    """``resume=auto`` (the default) or true: reuse what an earlier run in this directory finished."""
    return str(cfg.get("resume", "auto")) not in ("False", "false", "0")


def _different_config(what: Path, phase: str, detail: str = "") -> ConfigError:
    return ConfigError(f"{what} holds a {phase} phase of a different config{detail}. Rerunning in the same "
                       "run directory only resumes the same config: use a new hydra.run.dir, or resume=false "
                       "to recompute (and overwrite) this one.")


def _differing_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differing_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def check_resumable_checkpoint(path: Path, fingerprint: str, phase: str) -> int:
    """Refuse to resume ``path`` when it was written under another config (see :func:`config_fingerprint`);
    return the first (0-based) epoch the resumed run trains."""
    import torch

    from zsl_lightning.callbacks import CONFIG_HASH_KEY

    # mmap: only the pickled metadata is read, not the tensors
    ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    stored = ckpt.get(CONFIG_HASH_KEY)
    if stored is None:
        print(f"[zsl-lightning] {path} has no config fingerprint (an older run); resuming it unchecked",
              file=sys.stderr)
    elif stored != fingerprint:
        raise _different_config(path, phase, f" (fingerprint {stored}, this run {fingerprint})")
    return int(ckpt.get("epoch", -1)) + 1


def finished_selection(sel_file: Path, cfg: DictConfig, fingerprint: str) -> dict | None:
    """The ``selection.json`` of a finished dev phase when it may be reused (resume on, same config), else
    ``None``; refuses one written under another config."""
    if not sel_file.is_file() or not resume_enabled(cfg):
        return None
    dev_state = json.loads(sel_file.read_text())
    stored = dev_state.get("config_hash")
    if stored is None:
        print(f"[zsl-lightning] {sel_file} has no config fingerprint (an older run); reusing it unchecked",
              file=sys.stderr)
    elif stored != fingerprint:
        keys = _differing_keys(dev_state.get("config") or {}, fingerprinted_config(cfg))
        detail = f" (differs in: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''})" if keys else ""
        raise _different_config(sel_file.parent, "dev", detail)
    print(f"[zsl-lightning] dev phase already finished ({sel_file}); not repeating it", file=sys.stderr)
    return dev_state


CHECKPOINT_SELECTED_ON = {
    "val": "validation (the epoch selected in the dev phase)",
    "last": "last epoch (no selection)",
    "test_best": "TEST-SET SELECTION (best test evaluation; the papers' protocol, optimistic)",
}


def checkpoint_record(out: Path, chosen: dict[str, int], select: str) -> dict[str, dict]:
    """``results.json["checkpoints"]``: each checkpoint's path, the epoch it holds (read from the file)
    and, for ``best_<task>``, how that epoch was chosen."""
    import torch

    rec = {}
    for name in ["last", *(f"best_{t}" for t in chosen)]:
        path = out / "checkpoints" / f"{name}.ckpt"
        epoch = None
        if path.is_file():
            # Lightning stores the 0-based epoch that had just ended; the history counts from 1
            epoch = int(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["epoch"]) + 1
        rec[name] = {"path": str(path.relative_to(out)), "epoch": epoch}
        if name != "last":
            rec[name]["selected_on"] = CHECKPOINT_SELECTED_ON[select]
    return rec


#: folders of a run directory the phases write into (relative to the run directory)
RUN_SUBDIRS = ("checkpoints", "dev", "dev/checkpoints", "csv")


def writable_dir_error(path: Path, key: str) -> ConfigError | None:
    """Why ``path`` cannot be (created as) a writable directory, as an error naming ``key``; ``None`` if it can.
    Tried for real (a temporary file), so it also holds for root and read-only file systems."""
    import os
    import tempfile

    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return ConfigError(f"{key}: '{path}' cannot be created: '{probe}' is a file, not a directory. Pick another "
                           f"{key}=... or remove that file.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return ConfigError(f"{key}: the run directory '{path}' is not writable ({e.strerror or e}). Pick a writable "
                           f"{key}=... (e.g. under $HOME).")
    return None


def check_run_dir(out: Path, key: str = "hydra.run.dir") -> None:
    """The run directory is writable and none of the folders the phases write into is a file."""
    err = writable_dir_error(out, key)
    if err is not None:
        raise err
    for sub in RUN_SUBDIRS:
        p = Path(out) / sub
        if p.exists() and not p.is_dir():
            raise ConfigError(f"'{p}' is a file, but the run writes into a folder of that name; remove or rename it, "
                              f"or use another {key}.")
