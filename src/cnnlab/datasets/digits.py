"""scikit-learn's bundled 8x8 handwritten digits, shaped like ``keras.datasets.mnist``.

1,797 images of 8x8 pixels (UCI "Optical Recognition of Handwritten Digits"), shipped with
scikit-learn, so no network is needed. The pixels, counts 0..16 in the original, are scaled
to 0..255 as ``round(v * 255 / 16)`` and stored as uint8, like MNIST.

The split is fixed and deterministic: ``train_test_split(test_size=0.25, random_state=0,
stratify=y)``, giving 1,347 training and 450 test images with the class proportions of the
whole set.
"""

from __future__ import annotations

import numpy as np

from cnnlab.datasets.npz import SplitPair

TEST_SIZE = 0.25
SPLIT_SEED = 0
NUM_CLASSES = 10
CLASS_NAMES = [str(digit) for digit in range(NUM_CLASSES)]


def load_data() -> SplitPair:
    """Load the digits as ``((x_train, y_train), (x_test, y_test))``.

    x: uint8 (1347, 8, 8) and (450, 8, 8), pixels 0..255; y: uint8 (1347,), (450,), digits 0..9.
    The same arrays on every call (fixed stratified split, seed 0).
    """
    from sklearn.datasets import load_digits  # scikit-learn is slow to import: only when used
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels
    )
    return (x_train, y_train), (x_test, y_test)
