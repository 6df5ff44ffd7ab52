"""VGG19 ("configuration E", Simonyan & Zisserman 2015) as a multi-scale feature extractor for GBE-MLZSL.

GBE-MLZSL (Liu et al. 2023, Sec. III-B) reads three VGG19 feature maps ``{F^28, F^14, F^7}`` of a
224×224 image. The layers behind each scale (indices into ``features``, the torchvision numbering):

=====  ==========================  =================  ======================
scale  layer                       ``features`` index  shape (224×224 input)
=====  ==========================  =================  ======================
28     conv4_4 after its ReLU      26                 512 × 28 × 28
14     conv5_4 after its ReLU      35                 512 × 14 × 14
7      pool5 (2×2 max-pool of 14)  36                 512 × 7 × 7
=====  ==========================  =================  ======================

The 14×14 map is the one the BiAM/LESA feature files hold (conv5_4 after ReLU), so a model trained on
cached files and one trained on images see the same 14×14 features.

The conv layers are written here (torchvision does not install beside this torch) with torchvision's
module numbering, so its ImageNet state dict (``features.0.weight`` … ``features.34.bias``; the
``classifier.*`` keys are ignored) loads directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from zsl_lightning.errors import DataError, MissingFilesError

#: ImageNet channel statistics the torchvision VGG19 weights were trained with (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: VGG19 configuration E: conv output widths per block; each block ends with a 2×2 max-pool.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG19_WIDTHS = (64, 128, 256, 512, 512)
#: ``features`` index whose output is returned for each scale (for a 224×224 input).
SCALE_LAYERS = {28: 26, 14: 35, 7: 36}

WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
WEIGHTS_SOURCE = (
    f"torchvision's ImageNet VGG19 weights, file {WEIGHTS_FILE} "
    f"(https://download.pytorch.org/models/{WEIGHTS_FILE}, torchvision.models.VGG19_Weights.IMAGENET1K_V1)"
)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of RGB images ``(B, 3, H, W)`` or ``(3, H, W)``.

    ``uint8`` images are scaled to [0, 1] first; float images must already be in [0, 1]. Returns float32
    ``(x − mean) / std`` with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`.
    """
    if images.dim() not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"preprocess expects RGB images (B, 3, H, W) or (3, H, W); got {tuple(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def _vgg19_layers(widths: Sequence[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    c_in = 3
    for n_conv, width in zip(VGG19_BLOCKS, widths, strict=True):
        for _ in range(n_conv):
            layers += [nn.Conv2d(c_in, int(width), kernel_size=3, padding=1), nn.ReLU()]
            c_in = int(width)
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return layers


class VGG19MultiScale(nn.Module):
    """VGG19's conv layers returning ``{28: conv4_4+ReLU, 14: conv5_4+ReLU, 7: pool5}`` (module docstring).

    Args:
        weights: path of a VGG19 state dict (torchvision's ``vgg19-dcbb9e9d.pth``); ``None`` = random
            init (Kaiming-normal convs, zero biases), e.g. for tests with tiny ``widths``.
        widths: conv widths of the five blocks; the paper's network is ``(64, 128, 256, 512, 512)``.
        trainable: ``False`` (default) freezes every parameter and keeps the module in eval mode even
            when ``.train()`` is called, and runs the forward without autograd; ``True`` fine-tunes it.

    The keys of the returned dict are named after a 224×224 input; other sizes give ``H/8``, ``H/16``,
    ``H/32`` maps under the same keys.
    """

    def __init__(self, weights: str | Path | None = None, widths: Sequence[int] = VGG19_WIDTHS,
                 trainable: bool = False):
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"VGG19 has 5 blocks; widths must have 5 entries, got {list(widths)}")
        self.widths = tuple(int(w) for w in widths)
        self.trainable = bool(trainable)
        self.features = nn.Sequential(*_vgg19_layers(self.widths))
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        if weights is not None:
            self.load_weights(weights)
        if not self.trainable:
            self.requires_grad_(False)
            self.eval()

    @property
    def out_channels(self) -> dict[int, int]:
        """Channels of each returned scale."""
        return {28: self.widths[3], 14: self.widths[4], 7: self.widths[4]}

    def train(self, mode: bool = True) -> VGG19MultiScale:
        # A frozen backbone stays in eval mode whatever the LightningModule around it asks.
        return super().train(mode and self.trainable)

    def load_weights(self, path: str | Path) -> None:
        """Load a VGG19 state dict file (torchvision key names; ``classifier.*`` ignored)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingFilesError(
                "VGG19 backbone", [path], layout=f"<any folder>/{WEIGHTS_FILE}", source=WEIGHTS_SOURCE,
                hint=("This machine may have no internet access: download the file on another machine, copy "
                      f"it here and pass its path with data.backbone.weights=/path/to/{WEIGHTS_FILE}"),
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file is the user's input
            raise DataError(f"VGG19 weights file {path} could not be read as a torch state dict: {exc}") from exc
        if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
            state = state["state_dict"]
        if not isinstance(state, Mapping):
            raise DataError(f"VGG19 weights file {path} holds a {type(state).__name__}, not a state dict")
        self.load_vgg_state_dict(state, source=str(path))

    def load_vgg_state_dict(self, state: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
        """Check ``features.*`` names and shapes against this network, then copy them in.

        Raises :class:`~zsl_lightning.errors.DataError` naming the first mismatches.
        """
        own = {k: v.shape for k, v in self.state_dict().items()}
        given = {k: v for k, v in state.items() if k.startswith("features.")}
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        wrong = [f"{k}: file {tuple(given[k].shape)} vs model {tuple(own[k])}"
                 for k in own if k in given and tuple(given[k].shape) != tuple(own[k])]
        if missing or unexpected or wrong:
            parts = []
            for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("shape mismatches", wrong)):
                if items:
                    more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                    parts.append(f"{title}: {', '.join(items[:5])}{more}")
            raise DataError(
                f"VGG19 weights from {source} do not match VGG19 (configuration E, widths {list(self.widths)}): "
                + "; ".join(parts) + f". Expected torchvision's {WEIGHTS_FILE} ({WEIGHTS_SOURCE})."
            )
        self.load_state_dict(given, strict=True)

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """``images`` ``(B, 3, H, W)``, already normalised (:func:`preprocess`) → ``{28: …, 14: …, 7: …}``."""
        out: dict[int, torch.Tensor] = {}
        wanted = {i: s for s, i in SCALE_LAYERS.items()}
        x = images
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in wanted:
                    out[wanted[i]] = x
        return out
