"""Paper tables and figures: the papers' numbers as data (``conf/paper/``), multiruns collated beside them.

``paper`` loads and checks conf/paper/*.yaml; ``collate`` groups a multirun's jobs into cells (mean ± std over
seeds); ``render`` writes markdown / CSV / LaTeX; ``figures`` draws curves with error bars; ``outputs`` writes
the files and holds the Hydra callback that runs at the end of every ``-m experiment=...``.
"""
