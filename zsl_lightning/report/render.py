"""A collated table as markdown, CSV and LaTeX; the paper-only tables of the docs.

Every output marks rows selected on the test set (their label says ``selected on TEST``; the CSV has a
``selection`` column). A cell with no finished job reads ``missing``; a paper-only row (a method not built
here) reads ``—`` on our side.
"""

from __future__ import annotations

import csv
import io

from zsl_lightning.report.collate import Collated, collate
from zsl_lightning.report.paper import Axis, Panel, TableSpec

MISSING, NOT_BUILT, NOT_PRINTED = "missing", "—", "–"
#: a panel is printed one metric per column when it has at most this many (column, metric) pairs
WIDE = 8


def _short(metric: str) -> str:
    return metric.split("_", 1)[1] if "_" in metric else metric


def layout(columns: list[Axis], panel: Panel) -> list[tuple[str, str, tuple[str, ...]]]:
    """(header, column label, metrics) per printed column: one per metric when few, else metrics grouped."""
    if len(columns) * len(panel.metrics) <= WIDE and len(panel.metrics) > 1:
        one = len(columns) == 1
        return [(_short(m) if one else f"{c.label} {_short(m)}", c.label, (m,)) for c in columns
                for m in panel.metrics]
    return [(c.label, c.label, panel.metrics) for c in columns]


def row_label(axis: Axis) -> str:
    """The row's label, with the override that selects it (docs)."""
    if not axis.match:
        return axis.label

    def fmt(v) -> str:  # as typed on the command line: [g], not ['g']
        return f"[{','.join(map(str, v))}]" if isinstance(v, (list, tuple)) else str(v)

    return f"{axis.label} (`{' '.join(f'{k}={fmt(v)}' for k, v in axis.match.items())}`)"


def _num(v: float | None, decimals: int) -> str:
    return NOT_PRINTED if v is None else f"{v:.{decimals}f}"


def paper_text(c: Collated, row: str, col: str, metrics: tuple[str, ...]) -> str:
    vals = [c.paper_value(row, col, m) for m in metrics]
    return "" if all(v is None for v in vals) else " / ".join(_num(v, c.spec.decimals) for v in vals)


def ours_text(c: Collated, row: str, col: str, metrics: tuple[str, ...]) -> str:
    axis = next(r for r in c.rows if r.label == row)
    if axis.match is None:
        return NOT_BUILT
    cell = c.cells.get((row, col))
    stats = [cell.stat(m) if cell else None for m in metrics]
    if all(s is None for s in stats):
        return MISSING
    d = c.spec.decimals
    n = max(s[2] for s in stats if s)
    parts = [MISSING if s is None else f"{s[0]:.{d}f} ± {s[1]:.{d}f}" for s in stats]
    return " / ".join(parts) + f" (n={n})"


def diff_text(c: Collated, row: str, col: str, metrics: tuple[str, ...]) -> str:
    cell = c.cells.get((row, col))
    out = []
    for m in metrics:
        s, p = cell.stat(m) if cell else None, c.paper_value(row, col, m)
        out.append(None if s is None or p is None else s[0] - p)
    if all(v is None for v in out):
        return ""
    return "Δ " + " / ".join(NOT_PRINTED if v is None else f"{v:+.{c.spec.decimals}f}" for v in out)


def cell_text(c: Collated, row: str, col: str, metrics: tuple[str, ...]) -> str:
    parts = [ours_text(c, row, col, metrics)]
    paper = paper_text(c, row, col, metrics)
    if paper:
        parts.append(f"paper {paper}")
    diff = diff_text(c, row, col, metrics)
    if diff:
        parts.append(diff)
    return " · ".join(parts)


def md_table(header: list[str], body: list[list[str]]) -> list[str]:
    """A markdown table's lines (``|`` in a cell escaped)."""
    esc = [[x.replace("|", "\\|") for x in r] for r in [header, *body]]
    return ["| " + " | ".join(esc[0]) + " |", "|" + " --- |" * len(header), *("| " + " | ".join(r) + " |" for r in esc[1:])]


def markdown(c: Collated) -> str:
    """The collated table, one markdown table per panel: ours (mean ± std, n) · paper · Δ."""
    s = c.spec
    lines = [f"## {s.id}: {s.title}", ""]
    if any(mode != "val" for mode in c.selection.values()):
        lines += ["**Rows marked `selected on TEST` used the test set to choose their epochs "
                  "(eval.select=test_best): optimistic, not comparable with validation-selected rows.**", ""]
    for panel in s.panels:
        lines += [f"### {panel.title}", ""]
        cols = layout(c.columns, panel)
        body = [[r.label, *(cell_text(c, r.label, col, ms) for _, col, ms in cols)] for r in c.rows]
        lines += [*md_table([" ", *(h for h, _, _ in cols)], body), ""]
    lines.append("Cells: ours = mean ± sample std over seeds (n finished jobs; `missing`: no finished job) · "
                 "the paper's number · Δ = ours − paper. Columns the paper does not have carry no paper number.")
    if c.unmatched:
        lines.append(f"{len(c.unmatched)} job(s) matched no row or column: "
                     + ", ".join(j.dir.name for j in c.unmatched))
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["table", "panel", "row", "paper_row", "selection", "column", "metric", "mean", "std", "n", "paper",
              "diff", "status"]


def rows_long(c: Collated) -> list[dict]:
    """One record per (row, column, metric): the CSV and the W&B table."""
    out = []
    for panel in c.spec.panels:
        for r in c.rows:
            for col in c.columns:
                cell = c.cells.get((r.label, col.label))
                for m in panel.metrics:
                    st = cell.stat(m) if cell else None
                    p = c.paper_value(r.label, col.label, m)
                    status = "paper only" if r.match is None else ("ok" if st else MISSING)
                    out.append({"table": c.spec.id, "panel": panel.title, "row": r.label,
                                "paper_row": c.paper_row.get(r.label, r.label),
                                "selection": c.selection.get(r.label, "val"), "column": col.label, "metric": m,
                                "mean": st[0] if st else None, "std": st[1] if st else None,
                                "n": st[2] if st else 0, "paper": p,
                                "diff": None if st is None or p is None else st[0] - p, "status": status})
    return out


def to_csv(c: Collated) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows_long(c))
    return buf.getvalue()


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("—", "---"), ("–", "--"), ("λ", r"$\lambda$")):
        s = s.replace(a, b)
    return s


def latex(c: Collated) -> str:
    """One ``tabular`` per panel; a cell is ``ours (paper)``; test-selected rows carry a dagger."""
    out = [f"% {c.spec.id}: {c.spec.title}. Cells: ours mean $\\pm$ std over seeds (n), paper in parentheses."]
    for panel in c.spec.panels:
        out += [f"% {panel.title}", "\\begin{tabular}{l" + "c" * len(c.columns) + "}", "\\hline",
                " & ".join([""] + [_tex(col.label) for col in c.columns]) + " \\\\", "\\hline"]
        for r in c.rows:
            label = _tex(r.label) + ("$^\\dagger$" if c.selection.get(r.label, "val") == "test_best" else "")
            cells = []
            for col in c.columns:
                ours = ours_text(c, r.label, col.label, panel.metrics)
                paper = paper_text(c, r.label, col.label, panel.metrics)
                cells.append(_tex(ours + (f" ({paper})" if paper else "")))
            out.append(" & ".join([label, *cells]) + " \\\\")
        out += ["\\hline", "\\end{tabular}", ""]
    if any(m == "test_best" for m in c.selection.values()):
        out.append("% $^\\dagger$ epochs selected on the TEST set (eval.select=test_best)")
    return "\n".join(out) + "\n"


def docs_markdown(spec: TableSpec, collated: Collated | None = None) -> str:
    """The block of a docs page: the paper's numbers and, when ``collated`` is given, ours beside them."""
    c = collated or collate(spec, [])
    lines = []
    for panel in spec.panels:
        if len(spec.panels) > 1 or panel.title:
            where = f", {spec.columns[0].label}" if len(spec.columns) == 1 else ""
            lines += [f"{panel.title}{where}:", ""]
        cols = layout(c.columns, panel)
        if collated is None:
            header = [" ", *(h for h, _, _ in cols), "ours"]
            body = [[row_label(r), *(paper_text(c, r.label, col, ms) or NOT_PRINTED for _, col, ms in cols),
                     NOT_BUILT if r.match is None else "not run"] for r in spec.rows]
        else:
            header = [" ", *(h for h, _, _ in cols)]
            body = [[r.label, *(cell_text(c, r.label, col, ms) for _, col, ms in cols)] for r in c.rows]
        lines += [*md_table(header, body), ""]
    if spec.notes:
        lines += [spec.notes.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
