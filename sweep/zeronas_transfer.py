"""Yan et al. (ZeroNAS) Fig. 5, step 2: every searched genotype rewritten for every dataset's input sizes.

    python sweep/zeronas_transfer.py outputs/zeronas_fig5/search --out outputs/zeronas_fig5/genotypes

``root`` is a multirun (or any directory tree) of runs on the datasets: runs that searched (their run dir
holds ``genotype_g.yaml`` / ``genotype_d.yaml``) are the sources; every run (searched or not) names a
target by its ``config_resolved.yaml`` (``data.name`` and the input / output sizes of ``method.generator``
and ``method.discriminator``). For each (source, target) pair it writes
``<out>/<source>_to_<target>/genotype_{g,d}.yaml`` (lower-case dataset names, as the ``data=`` choices):
the source's architecture (widths, kept edges, ops, output node, activation) with the target's
``input_dims`` and ``out_dim``. The diagonal (``cub_to_cub``) is the dataset's own genotype.

Why a rewrite: a genotype file records the sizes it was searched with and ``SearchedNetwork`` refuses a
config that differs (a genotype searched on other data must not be reshaped silently). Transfer is the
one place where that is wanted, so it is an explicit, separate step. The cells' widths are Sec. 4's fixed
widths, so only the input layers (attribute / noise sizes) change shape.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

TAGS = {"g": "generator", "d": "discriminator"}


def target_dims(run_dir: Path) -> tuple[str, dict[str, tuple[list[int], int]]]:
    """``(data name, {tag: (input_dims, out_dim)})`` of a run, from its ``config_resolved.yaml``."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config_resolved.yaml").read_text())
    dims = {}
    for tag, key in TAGS.items():
        node = cfg["method"][key]
        in_dims = node.get("in_dims", node.get("input_dims"))
        dims[tag] = ([int(d) for d in in_dims], int(node["out_dim"]))
    return str(cfg["data"]["name"]).lower(), dims


def collect(root: Path) -> tuple[dict[str, dict[str, Path]], dict[str, dict]]:
    """Sources ``{data: {tag: genotype file}}`` and targets ``{data: dims}`` under ``root``."""
    sources, targets = {}, {}
    for cfg_file in sorted(root.rglob("config_resolved.yaml")):
        run = cfg_file.parent
        try:
            name, dims = target_dims(run)
        except (KeyError, TypeError):  # not a G/D method (or an unfinished config)
            continue
        targets.setdefault(name, dims)
        files = {tag: run / f"genotype_{tag}.yaml" for tag in TAGS if (run / f"genotype_{tag}.yaml").is_file()}
        if files:
            sources.setdefault(name, files)
    return sources, targets


def transfer(sources: dict, targets: dict, out: Path) -> list[Path]:
    from zsl_lightning.nn.genotype import Genotype

    written = []
    for src, files in sorted(sources.items()):
        for tgt, dims in sorted(targets.items()):
            pair = out / f"{src}_to_{tgt}"
            for tag, path in files.items():
                g = Genotype.from_yaml(path)
                in_dims, out_dim = dims[tag]
                written.append(dataclasses.replace(g, input_dims=tuple(in_dims), out_dim=out_dim)
                               .to_yaml(pair / f"genotype_{tag}.yaml"))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="runs that searched (sources) and runs on the target datasets")
    ap.add_argument("--out", type=Path, required=True, help="directory for <source>_to_<target>/ folders")
    args = ap.parse_args(argv)
    sources, targets = collect(args.root)
    if not sources:
        print(f"no run with genotype_g.yaml / genotype_d.yaml under {args.root}", file=sys.stderr)
        return 1
    written = transfer(sources, targets, args.out)
    print(f"sources {sorted(sources)} -> targets {sorted(targets)}: {len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
