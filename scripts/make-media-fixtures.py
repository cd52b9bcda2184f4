#!/usr/bin/env python3
"""make-media-fixtures.py: golden fixtures for the image front end (tests/test_media.c).

Writes into assets/media/:
  *.png, photo.jpg          small test images of odd sizes (noise over gradients and hard edges, so
                            every rounding step of the resize shows), a grey one, one with alpha
  preprocess.safetensors    for each case "<image>@<S>":
                              "<case>"          F32 [3, S, S]  Hugging Face's Gemma 3 image processor
                                                (PIL backend) output: resize to S x S with PIL BILINEAR,
                                                x/255, (x - 0.5)/0.5
                              "<case>.resized"  U8 [S, S, 3]   the processor's RGB image (transparency
                                                composited onto white) through PIL's resize alone
                            and "photo.jpg.pixels" U8 [H, W, 3]: the JPEG as PIL (libjpeg) decodes it,
                            to measure how far stb_image's decoder is from it.
The processor runs on the image as PIL opened it (the JPEG case on PIL's decode), as a user of
transformers would call it.

    python3 -m pip install transformers pillow numpy safetensors
    python3 scripts/make-media-fixtures.py [--out assets/media]
"""
import argparse
import os

import numpy as np
from PIL import Image
from safetensors.numpy import save_file
from transformers.image_transforms import convert_to_rgb

try:  # transformers >= 5: the PIL backend has its own class
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil as Processor
except ImportError:  # transformers 4.x: the slow processor is the PIL one
    from transformers import Gemma3ImageProcessor as Processor


def pattern(h, w, seed):
    """Gradients, a hard-edged block and noise, uint8 [h, w, 3]."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 128 + 100 * np.sin((x + 2 * y) / 3)], -1)
    img[h // 4 : h // 2, w // 3 : (2 * w) // 3] = [250, 10, 200]
    img += rng.normal(0, 40, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "assets", "media"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # name -> PIL image as saved
    images = {
        "odd-37x23.png": Image.fromarray(pattern(23, 37, 1)),      # upscaled to 48 (and down to 16)
        "odd-101x67.png": Image.fromarray(pattern(67, 101, 2)),    # downscaled by 3.2 x 2.1 and 1.6 x 1.05
        "tall-13x90.png": Image.fromarray(pattern(90, 13, 3)),     # up horizontally, down vertically
        "square-32.png": Image.fromarray(pattern(32, 32, 4)),      # already S x S: no resampling
        "grey-20x19.png": Image.fromarray(pattern(19, 20, 5)[:, :, 1]),  # mode L
        "alpha-30x17.png": Image.fromarray(np.concatenate(
            [pattern(17, 30, 6), np.linspace(0, 255, 17 * 30).reshape(17, 30, 1).astype(np.uint8)], -1)),  # RGBA: onto white
        "photo.jpg": Image.fromarray(pattern(72, 96, 7)),          # lossy: decoders differ
    }
    cases = [
        ("odd-37x23.png", 48), ("odd-37x23.png", 16), ("odd-101x67.png", 32), ("odd-101x67.png", 64),
        ("tall-13x90.png", 32), ("square-32.png", 32), ("grey-20x19.png", 32), ("alpha-30x17.png", 32),
        ("photo.jpg", 32),
    ]
    for name, im in images.items():
        path = os.path.join(args.out, name)
        if name.endswith(".jpg"):
            im.save(path, quality=85)
        else:
            im.save(path, optimize=True)

    tensors = {}
    for name, size in cases:
        im = Image.open(os.path.join(args.out, name))
        im.load()
        proc = Processor(size={"height": size, "width": size})
        out = proc(im, return_tensors="np")["pixel_values"][0]
        assert out.shape == (3, size, size) and out.dtype == np.float32, out.shape
        key = f"{name}@{size}"
        tensors[key] = np.ascontiguousarray(out)
        try:  # transformers >= 5 composites transparency onto white; 4.x dropped it
            rgb = Image.fromarray(convert_to_rgb(im, return_numpy=True))
        except TypeError:
            rgb = convert_to_rgb(im)
        resized = rgb.resize((size, size), Image.BILINEAR)
        tensors[key + ".resized"] = np.ascontiguousarray(np.asarray(resized, dtype=np.uint8))
    tensors["photo.jpg.pixels"] = np.ascontiguousarray(
        np.asarray(Image.open(os.path.join(args.out, "photo.jpg")).convert("RGB"), dtype=np.uint8))
    save_file(tensors, os.path.join(args.out, "preprocess.safetensors"),
              metadata={"source": f"{Processor.__name__}, PIL BILINEAR, rescale 1/255, mean 0.5, std 0.5"})

    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {len(tensors)} tensors and {len(images)} images to {args.out} ({total} bytes)")


if __name__ == "__main__":
    main()
