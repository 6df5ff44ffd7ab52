"""The config tree printed at the start of a run."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

ORDER = ("data", "method", "eval", "trainer", "logger", "callbacks", "paths", "data_info")


def print_config_tree(cfg: DictConfig, order=ORDER) -> None:
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order and k != "hydra"]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    rich.print(tree)
