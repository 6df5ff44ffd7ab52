"""Gather the results.json files of a multirun into a markdown table.

    python sweep/gather.py outputs/train/multiruns/2026-11-23_10-00-00 [more dirs ...] [--csv table.csv]

One row per job: method, data, seed, selection mode, and the headline metrics (test split, read at the
epochs chosen as results.json says). Rows selected on the test set (eval.select=test_best) are marked.
ZeroNAS runs (results.json has "search") add ``base`` (the searched framework), ``arch`` (``NAS``;
``NAS, fixed D`` / ``NAS, fixed G`` when zeronas.networks searched one network only; the other rows of the
table are then ``FIX``) and, for a retraining from files, ``genotype`` (the directory's name, e.g.
``cub_to_flo`` in Fig. 5).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def zeronas_columns(run_dir: Path, search: dict) -> dict:
    """``base``, ``arch`` and (retraining from files) ``genotype`` of a ZeroNAS run."""
    import yaml

    cfg_file = run_dir / "config_resolved.yaml"
    z = (yaml.safe_load(cfg_file.read_text()) or {}).get("zeronas", {}) if cfg_file.is_file() else {}
    nets = sorted(z.get("networks") or ["g", "d"])
    arch = {"d": "NAS, fixed G", "g": "NAS, fixed D"}.get("".join(nets), "NAS")
    cols = {"base": search.get("base") or z.get("base", ""), "arch": arch}
    if search.get("skipped"):
        files = list((search.get("genotypes") or {}).values())
        cols["genotype"] = Path(files[0]).parent.name if files else ""
    return cols


def gather(*roots: Path) -> list[dict]:
    rows = []
    for root in roots:
        for p in sorted(root.rglob("results.json")):
            r = json.loads(p.read_text())
            row = {"job": str(p.parent.relative_to(root)), "method": r.get("method"),
                   "variant": r.get("variant", ""), "data": r.get("data"), "seed": r.get("seed"),
                   "selection": r["selection"]["mode"]}
            if "search" in r:
                row.update(zeronas_columns(p.parent, r["search"]))
            row.update({k: round(v, 2) for k, v in r.get("headline", {}).items()})
            rows.append(row)
    if any("arch" in row for row in rows):
        for row in rows:
            row.setdefault("arch", "FIX")
    return rows


def markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no results.json found)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [str(r.get(c, "")) for c in cols]
        if r["selection"] == "test_best":
            cells[cols.index("selection")] = "test_best (selected on TEST)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", type=Path, nargs="+", help="multirun directories (their rows are joined)")
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args(argv)
    rows = gather(*args.roots)
    print(markdown(rows))
    if args.csv and rows:
        cols = list(dict.fromkeys(k for r in rows for k in r))
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            w.writerows(rows)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
