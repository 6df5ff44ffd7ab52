#!/usr/bin/env python
"""Cache multi-scale VGG19 feature maps of a set of images (GBE-MLZSL; docs/data.md, "Multi-label feature maps").

Input: an image list (``zsl_lightning.data.image_list_format``: ``<list>.h5`` with ``image_paths`` and
``labels``, images under ``<list's folder>/images`` or ``--images``). Each image is decoded with PIL, resized
to 224 x 224 (bilinear, no crop, as BiAM / LESA), ImageNet-normalised and run through the frozen
``zsl_lightning.nn.backbone.VGG19MultiScale`` (eval mode, no gradients), which returns the 28 x 28, 14 x 14
and 7 x 7 maps. Output: one cached-maps file (``zsl_lightning.data.feature_maps_format``): float16 maps per
scale, the list's labels (int8) and image paths, written ``--chunk-rows`` rows at a time to
``<out>.partial`` and renamed when complete (an interrupted run leaves no file that looks finished). When the
list also holds ``--standard-labels-key`` (default ``labels_81``: the training images' labels over the 81
concepts, for ``data.mode=standard`` / ``experiment=gbe_table4``), that dataset is copied too.

  python scripts/cache_feature_maps.py --list data/NUS-WIDE/images_train.h5 \\
      --weights ~/weights/vgg19-dcbb9e9d.pth --out data/NUS-WIDE/maps/train.h5 --device cuda

``--weights``: the torchvision ImageNet VGG19 state dict (``vgg19-dcbb9e9d.pth``, from
download.pytorch.org/models/, see torchvision's VGG19_Weights.IMAGENET1K_V1); nothing is downloaded here.
``--tiny``: a small randomly initialised backbone (no weights file), for tests.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

TINY_WIDTHS = (4, 8, 8, 16, 16)


def _read(images, idx):
    return (idx, *images.read(idx))


def build_backbone(args):
    """The only place that knows the backbone's constructor (written against the interface
    ``VGG19MultiScale(weights=path, widths=...)``; ``model(x)`` → {28: t, 14: t, 7: t})."""
    from zsl_lightning.nn.backbone import VGG19MultiScale

    if args.tiny:
        return VGG19MultiScale(weights=None, widths=TINY_WIDTHS), f"vgg19-tiny{list(TINY_WIDTHS)}-random"
    if args.weights is None:
        raise SystemExit("cache_feature_maps: --weights PATH is required (or --tiny for a test backbone).")
    return VGG19MultiScale(weights=args.weights), f"vgg19:{Path(args.weights).name}"


def run(args) -> Path:
    import h5py
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from zsl_lightning.data.feature_maps_format import FeatureMapsWriter
    from zsl_lightning.data.image_list_format import ImageList, imagenet_normalize
    from zsl_lightning.errors import DataError

    images = ImageList(args.list, args.images, size=args.size)
    key = args.standard_labels_key  # data.mode=standard's training labels travel with the maps
    with h5py.File(args.list, "r") as f:
        copy = bool(key) and key in f
    extra = {key: ImageList(args.list, args.images, check_files=False, labels_key=key).labels} if copy else {}
    n = len(images) if args.limit is None else min(args.limit, len(images))
    model, backbone_name = build_backbone(args)
    device = torch.device(args.device)
    model = model.to(device).eval().requires_grad_(False)
    batches = [range(lo, min(n, lo + args.batch_size)) for lo in range(0, n, args.batch_size)]
    loader = DataLoader(batches, batch_size=None, num_workers=args.workers, collate_fn=partial(_read, images))
    writer = None
    try:
        with torch.inference_mode(), tqdm(total=n, unit="img", desc=f"caching {Path(args.out).name}") as bar:
            for idx, x, y in loader:
                maps = model(imagenet_normalize(x.to(device, non_blocking=True)))
                if set(maps) != {28, 14, 7}:
                    raise DataError(f"the backbone returned scales {sorted(maps)}; expected 28, 14 and 7.")
                if writer is None:
                    writer = FeatureMapsWriter(args.out, {s: int(t.shape[1]) for s, t in maps.items()}, y.shape[1],
                                               backbone=backbone_name, input_size=args.size,
                                               chunk_rows=args.chunk_rows,
                                               attrs={"image_list": str(Path(args.list).resolve())},
                                               extra_labels={k: v.shape[1] for k, v in extra.items()})
                writer.append(maps, y, [images.paths[i] for i in idx], {k: v[list(idx)] for k, v in extra.items()})
                bar.update(len(idx))
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise DataError(f"'{args.list}' lists no images; nothing was written.")
    return writer.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", required=True, help="image list .h5 (image_paths, labels)")
    p.add_argument("--images", default=None, help="image folder (default: <list's folder>/images)")
    p.add_argument("--out", required=True, help="output cached-maps .h5")
    p.add_argument("--weights", default=None, help="torchvision VGG19 ImageNet state dict (.pth)")
    p.add_argument("--tiny", action="store_true", help="small random backbone, no weights (tests)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunk-rows", type=int, default=64, help="HDF5 chunk length along N")
    p.add_argument("--workers", type=int, default=2, help="image-decoding DataLoader workers")
    p.add_argument("--size", type=int, default=224, help="input side (resize, no crop)")
    p.add_argument("--limit", type=int, default=None, help="cache only the first N images")
    p.add_argument("--standard-labels-key", default="labels_81",
                   help="label dataset of the list copied when present (data.standard_labels_key; '' = none)")
    args = p.parse_args(argv)

    from zsl_lightning.errors import ZSLError

    try:
        out = run(args)
    except ZSLError as e:
        print(f"cache_feature_maps: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
