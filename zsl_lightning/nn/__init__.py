"""Plain ``nn.Module`` building blocks (no Lightning): MLPs, encoders, fusion blocks."""

from zsl_lightning.nn.backbone import VGG19MultiScale
from zsl_lightning.nn.gbe import GBE
from zsl_lightning.nn.mlp import MLP, GaussianEncoder, make_activation

__all__ = ["MLP", "GaussianEncoder", "make_activation", "GBE", "VGG19MultiScale"]
