"""The papers' tables and figures as data: ``conf/paper/<paper>.yaml`` → :class:`TableSpec`.

A file holds one paper::

    paper: gao2018                      # the file's stem
    citation: Gao et al. 2018, ...
    tables:
      jgm.table3:                       # id: <method>.<table|fig><n>, unique over all files
        title: Component study
        kind: table                     # table | figure
        experiments: [jgm_table3]       # conf/experiment/<name>.yaml files whose multirun produce it
        doc: docs/methods/jgm.md        # (or a list) the page holding its <!-- paper-table: jgm.table3 --> block
        decimals: 1                     # how the paper prints its numbers
        panels:                         # one printed table per panel; a cell holds the panel's metrics
          - {title: ZSL T1 (%), metrics: [zsl_t1]}
          - {title: GZSL u / s / H (%), metrics: [gzsl_u, gzsl_s, gzsl_H]}
        columns:
          - {label: CUB, match: {data: cub}}
        rows:
          - label: CVAE+CAT
            match: {variant: jgm_cvae_cat}   # null: a paper-only row (another method, not built here)
            paper: {CUB: [48.7, 33.3, 54.0, 41.2]}   # every metric of every panel, in order; null = not printed

``match`` keys are read from a job's command-line overrides, then its config-group choices, then
results.json (``method``, ``data``, ``variant``), then config_resolved.yaml (dotted paths). A figure has
``figure:`` (:mod:`zsl_lightning.report.figures`) instead of paper cells. ``kind: images`` (pictures each job
draws, e.g. t-SNE panels) has ``images: [<glob under a job dir>, ...]``, optional rows / columns to label the
jobs, and no panels or paper cells (:mod:`zsl_lightning.report.images`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zsl_lightning.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
KINDS = ("table", "figure", "images")


@dataclass(frozen=True)
class Axis:
    """A row or a column: its printed label and the job values that select it (``None``: paper only)."""

    label: str
    match: dict | None


@dataclass(frozen=True)
class Panel:
    title: str
    metrics: tuple[str, ...]


@dataclass
class TableSpec:
    id: str
    paper: str
    title: str
    kind: str
    experiments: tuple[str, ...]
    panels: tuple[Panel, ...]
    rows: tuple[Axis, ...]
    columns: tuple[Axis, ...]
    #: (row label, column label) -> one value per metric (``metrics``), None where the paper prints none
    cells: dict[tuple[str, str], tuple[float | None, ...]] = field(default_factory=dict)
    decimals: int = 1
    #: the docs pages holding its ``<!-- paper-table: <id> -->`` block
    docs: tuple[str, ...] = ()
    notes: str = ""
    figure: dict | None = None
    #: kind ``images``: glob patterns (relative to a job directory) of the pictures each job draws
    images: tuple[str, ...] = ()
    file: Path | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m for p in self.panels for m in p.metrics)

    def paper_value(self, row: str, col: str, metric: str) -> float | None:
        vals = self.cells.get((row, col))
        return None if vals is None else vals[self.metrics.index(metric)]


def _need(d: dict, key: str, where: str, types):
    if key not in d:
        raise ConfigError(f"{where}: missing key '{key}'")
    if not isinstance(d[key], types):
        raise ConfigError(f"{where}.{key}: expected {getattr(types, '__name__', types)}, got {d[key]!r}")
    return d[key]


def _axis(d, where: str, row: bool) -> Axis:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping with 'label' and 'match', got {d!r}")
    label = str(_need(d, "label", where, (str, int, float)))
    if "match" not in d:
        raise ConfigError(f"{where}: missing key 'match' (a mapping of override keys to values"
                          + (", or null for a paper-only row)" if row else ")"))
    match = d["match"]
    if match is None and not row:
        raise ConfigError(f"{where}.match: a column needs a match (e.g. {{data: cub}})")
    if match is not None and not isinstance(match, dict):
        raise ConfigError(f"{where}.match: expected a mapping such as {{variant: jgm_full}}, got {match!r}")
    return Axis(label, None if match is None else {str(k): v for k, v in match.items()})


def _docs(doc, where: str) -> tuple[str, ...]:
    if doc is None:
        return ()
    docs = [doc] if isinstance(doc, str) else doc
    if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
        raise ConfigError(f"{where}.doc: expected a docs path or a list of them, got {doc!r}")
    return tuple(docs)


def _spec(tid: str, t: dict, paper: str, file: Path) -> TableSpec:
    where = f"{file}: tables.{tid}"
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: expected a mapping")
    kind = _need(t, "kind", where, str)
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: '{kind}' is not one of {KINDS}")
    experiments = _need(t, "experiments", where, list)
    panels = []
    for i, p in enumerate(_need(t, "panels", where, list) if kind != "images" else []):
        pw = f"{where}.panels[{i}]"
        metrics = _need(p, "metrics", pw, list) if isinstance(p, dict) else None
        if not metrics:
            raise ConfigError(f"{pw}: needs a non-empty 'metrics' list of results.json headline keys")
        panels.append(Panel(str(p.get("title", "")), tuple(str(m) for m in metrics)))
    if not panels and kind != "images":
        raise ConfigError(f"{where}.panels: at least one panel is needed")
    images = t.get("images") or []
    if kind == "images" and (not isinstance(images, list) or not images):
        raise ConfigError(f"{where}.images: kind images needs a list of file patterns, e.g. [plots/*.png]")
    columns = tuple(_axis(c, f"{where}.columns[{i}]", False) for i, c in enumerate(t.get("columns") or []))
    rows_raw = t.get("rows") or []
    rows = tuple(_axis(r, f"{where}.rows[{i}]", True) for i, r in enumerate(rows_raw))
    for what, axes in (("rows", rows), ("columns", columns)):
        labels = [a.label for a in axes]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ConfigError(f"{where}.{what}: labels must be unique, repeated: {sorted(dup)}")
    spec = TableSpec(tid, paper, str(t.get("title", "")), kind, tuple(str(e) for e in experiments),
                     tuple(panels), rows, columns, decimals=int(t.get("decimals", 1)), docs=_docs(t.get("doc"), where),
                     notes=str(t.get("notes") or ""), figure=t.get("figure"),
                     images=tuple(str(i) for i in images), file=file)
    if kind == "table" and (not rows or not columns):
        raise ConfigError(f"{where}: a table needs 'rows' and 'columns'")
    if kind == "figure" and not isinstance(spec.figure, dict):
        raise ConfigError(f"{where}.figure: a figure needs a 'figure' mapping (x, series, ...)")
    col_labels = {c.label for c in columns}
    n = len(spec.metrics)
    for i, (axis, raw) in enumerate(zip(rows, rows_raw, strict=True)):
        for col, vals in (raw.get("paper") or {}).items():
            cw = f"{where}.rows[{i}].paper.{col}"
            if str(col) not in col_labels:
                raise ConfigError(f"{cw}: no column labelled '{col}' (columns: {sorted(col_labels)})")
            vals = vals if isinstance(vals, list) else [vals]
            if len(vals) != n:
                raise ConfigError(f"{cw}: {len(vals)} value(s) for {n} metric(s) {list(spec.metrics)}")
            if any(v is not None and not isinstance(v, (int, float)) for v in vals):
                raise ConfigError(f"{cw}: values must be numbers or null, got {vals}")
            spec.cells[(axis.label, str(col))] = tuple(None if v is None else float(v) for v in vals)
    return spec


def load_file(file: Path) -> dict[str, TableSpec]:
    import yaml

    try:
        raw = yaml.safe_load(Path(file).read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping with 'paper' and 'tables'")
    paper = _need(raw, "paper", str(file), str)
    tables = _need(raw, "tables", str(file), dict)
    return {str(tid): _spec(str(tid), t, paper, Path(file)) for tid, t in tables.items()}


def load_papers(conf_dir: Path | None = None) -> dict[str, TableSpec]:
    """Every table of ``<conf_dir>/paper/*.yaml`` by id; ids are unique over all files."""
    folder = Path(conf_dir or CONF) / "paper"
    specs: dict[str, TableSpec] = {}
    for file in sorted(folder.glob("*.yaml")):
        for tid, spec in load_file(file).items():
            if tid in specs:
                raise ConfigError(f"{file}: table id '{tid}' is also defined in {specs[tid].file}")
            specs[tid] = spec
    return specs


def tables_for_experiment(experiment: str | None, specs: dict[str, TableSpec]) -> list[TableSpec]:
    """The tables and figures an experiment (``conf/experiment/<name>.yaml``) produces."""
    return [s for s in specs.values() if experiment and experiment in s.experiments]


def get_table(table_id: str, specs: dict[str, TableSpec]) -> TableSpec:
    if table_id not in specs:
        raise ConfigError(f"--table {table_id}: no such table in conf/paper/*.yaml (known: {sorted(specs)})")
    return specs[table_id]
