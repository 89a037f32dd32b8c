"""Regenerates src/tunepipe/datasets/digits/ from scikit-learn's bundled digits dataset.

The shipped image-folder sample (``sample://digits``) is 10 classes x 50 grayscale PNGs of
32x32 pixels: the first 50 images of each digit in ``sklearn.datasets.load_digits`` (8x8,
values 0-16), scaled to 0-255 and upscaled with nearest-neighbour resampling. scikit-learn is
needed only to run this script (``pip install scikit-learn``); it is not a tunepipe dependency.

    python tools/make_digits.py
"""

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

PER_CLASS = 50
SIZE = 32
TARGET = Path(__file__).resolve().parents[1] / "src" / "tunepipe" / "datasets" / "digits"


def main() -> None:
    digits = load_digits()
    for digit in range(10):
        folder = TARGET / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for number, index in enumerate(np.flatnonzero(digits.target == digit)[:PER_CLASS]):
            pixels = (digits.images[index] * (255 / 16)).round().astype(np.uint8)
            image = Image.fromarray(pixels, mode="L").resize((SIZE, SIZE), Image.NEAREST)
            image.save(folder / f"{digit}_{number:03d}.png", optimize=True)
    print(f"wrote {10 * PER_CLASS} images under {TARGET}")


if __name__ == "__main__":
    main()
