"""Collate multirun directories into the paper's table (or figure), beside the paper's numbers.

    python sweep/collate.py outputs/jgm_table3/multiruns/<date> [more dirs ...] [--table jgm.table3] [--out DIR]

Writes <out>/<table id>/table.md, table.csv, table.tex (a figure: figure.png, points.csv, table.md) and prints
the markdown. Without --table, the tables whose conf/paper entry lists the runs' experiment. Each cell is
mean ± std over seeds (n shown) beside the paper's number and the difference; a cell without a finished job
reads "missing"; runs selected on the test set (eval.select=test_best) are rows of their own, marked.
Every `python train.py -m experiment=...` does this itself when it ends (<sweep dir>/paper_tables/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from zsl_lightning.errors import ZSLError
    from zsl_lightning.report.outputs import collate_dirs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", type=Path, nargs="+", help="multirun (or run) directories; their jobs are joined")
    ap.add_argument("--table", action="append", help="table id from conf/paper/*.yaml (repeatable)")
    ap.add_argument("--out", type=Path, help="output directory (default: <first root>/paper_tables)")
    args = ap.parse_args(argv)
    missing = [str(r) for r in args.roots if not r.is_dir()]
    if missing:
        print(f"error: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        written = collate_dirs(args.roots, args.out or args.roots[0] / "paper_tables", args.table)
    except ZSLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for files in written.values():
        print(files[0].read_text())
        print("wrote " + ", ".join(str(f) for f in files) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
