"""zsl-lightning: generative and multi-label zero-shot learning on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
