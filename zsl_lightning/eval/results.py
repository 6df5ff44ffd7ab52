"""The run's final table (printed) and the ordering of metric names."""

from __future__ import annotations

from collections.abc import Mapping


def _rank(key: str) -> tuple:
    """zsl before gzsl; within a task: T1 / u / s / H, then mAP, F1@k, P@k, R@k (k ascending)."""
    task = 0 if key.startswith("zsl_") else 1
    name = key.split("_", 1)[1] if "_" in key else key
    fixed = {"t1": 0, "u": 1, "s": 2, "H": 3, "mAP": 4}
    if name in fixed:
        return (task, fixed[name], 0, name)
    for i, head in enumerate(("F1@", "P@", "R@")):
        if name.startswith(head) and name[len(head):].isdigit():
            return (task, 5, int(name[len(head):]), i)
    return (task, 9, 0, name)


def ordered(metrics: Mapping[str, float]) -> list[str]:
    return sorted(metrics, key=_rank)


def results_table(results: Mapping) -> str:
    """A plain-text table of the headline numbers (also rendered by rich when available)."""
    head = results["headline"]
    sel = results["selection"]
    epochs = sel.get("epochs", {})
    val = results.get("validation", {})
    from zsl_lightning.eval.selection import task_of

    rows = [("metric", "test", "val", "epoch")]
    for k in ordered(head):
        task = task_of(k)
        v = val.get(k)
        rows.append((k, f"{head[k]:.2f}", "" if v is None else f"{v:.2f}", str(epochs.get(task, ""))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{results['method']} on {results['data']} — {sel['description']}"]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_results(results: Mapping) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        from zsl_lightning.eval.selection import task_of

        sel = results["selection"]
        t = Table(title=f"{results['method']} on {results['data']}", caption=sel["description"],
                  caption_justify="left")
        for col in ("metric", "test", "val", "epoch"):
            t.add_column(col, justify="left" if col == "metric" else "right")
        val = results.get("validation", {})
        for k in ordered(results["headline"]):
            v = val.get(k)
            t.add_row(k, f"{results['headline'][k]:.2f}", "" if v is None else f"{v:.2f}",
                      str(sel.get("epochs", {}).get(task_of(k), "")))
        Console(width=110).print(t)
    except ImportError:  # pragma: no cover
        print(results_table(results))


#: an mAP this high over this many labels is almost surely an artefact (e.g. {0, 1}-coded label files)
PERFECT_MAP, MANY_LABELS = 99.9, 10


def too_perfect_warnings(headline: dict, info: dict) -> list[str]:
    """Warnings for multi-label headline mAPs ≥ 99.9 over ≥ 10 labels: a {0, 1}-coded label file (0 is
    "unknown", so every negative drops out of AP) scores exactly that."""
    if info.get("label_mode") != "multi":
        return []
    labels = {"zsl": info.get("num_unseen", 0), "gzsl": info.get("num_classes", 0), "std": info.get("num_classes", 0)}
    out = []
    for task, n in labels.items():
        value = headline.get(f"{task}_mAP")
        if value is not None and float(value) >= PERFECT_MAP and int(n or 0) >= MANY_LABELS:
            out.append(f"{task}_mAP = {float(value):.2f} over {n} labels is too perfect to be real: check that the "
                       "label files code negatives as -1 (0 means unknown and is skipped by mAP; a {0, 1} file "
                       "needs data.label_coding=binary).")
    return out
