"""Datamodules and on-disk formats."""
