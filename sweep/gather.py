"""Gather the results.json files of a multirun into a markdown table.

    python sweep/gather.py outputs/train/multiruns/2026-11-23_10-00-00 [--csv table.csv]

One row per job: method, data, seed, selection mode, and the headline metrics (test split, read at the
epochs chosen as results.json says). Rows selected on the test set (eval.select=test_best) are marked.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def gather(root: Path) -> list[dict]:
    rows = []
    for p in sorted(root.rglob("results.json")):
        r = json.loads(p.read_text())
        row = {"job": str(p.parent.relative_to(root)), "method": r.get("method"), "variant": r.get("variant", ""),
               "data": r.get("data"), "seed": r.get("seed"), "selection": r["selection"]["mode"]}
        row.update({k: round(v, 2) for k, v in r.get("headline", {}).items()})
        rows.append(row)
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
    ap.add_argument("root", type=Path)
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args(argv)
    rows = gather(args.root)
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
