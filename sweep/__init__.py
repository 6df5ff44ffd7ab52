"""Sweep configs (found by Hydra through ``hydra.searchpath: [pkg://sweep]``) and multirun tools."""
