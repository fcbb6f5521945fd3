"""A user's own image dataset saved as a NumPy ``.npz`` archive.

The archive holds the four arrays of a Keras ``load_data()`` result::

    np.savez("mine.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

Images are (N, H, W) or (N, H, W, C), integer or float; labels are non-negative integer class
indices of shape (N,) (or (N, 1), which is flattened). An optional string array
``class_names`` names the classes. Files are read with ``allow_pickle=False``: arrays of
Python objects are refused, never unpickled.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from cnnlab.engine.limits import LimitExceeded, check, check_pixels
from cnnlab.engine.saving import ObjectArrayRefused, check_member, read_npy
from cnnlab.errors import DatasetError

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")
CLASS_NAMES_KEY = "class_names"

Split = tuple[np.ndarray, np.ndarray]
SplitPair = tuple[Split, Split]


def load_npz(path: str | os.PathLike[str]) -> SplitPair:
    """Load and validate ``((x_train, y_train), (x_test, y_test))`` from an ``.npz`` file.

    Same return shape as ``keras.datasets.*.load_data()``. Dtypes are kept as saved, except
    that (N, 1) labels become (N,). Raises :class:`DatasetError` naming the file and the fault.
    """
    path = Path(path)
    arrays = read_npz_arrays(path, REQUIRED_KEYS)
    for split in ("train", "test"):
        arrays[f"y_{split}"] = flatten_labels(path, f"y_{split}", arrays[f"y_{split}"])
        check_images(path, f"x_{split}", arrays[f"x_{split}"])
        check_labels(path, f"y_{split}", arrays[f"y_{split}"])
        check_counts(path, split, arrays[f"x_{split}"], arrays[f"y_{split}"])
    check_same_image_shape(path, arrays["x_train"], arrays["x_test"])
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def read_npz_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the named arrays from an ``.npz`` archive; every one of them must be present."""
    with open_npz(path, keys) as archive:
        names = [name[: -len(".npy")] for name in archive.namelist() if name.endswith(".npy")]
        missing = [key for key in keys if key not in names]
        if missing:
            raise DatasetError(
                f"{path}: missing array(s) {', '.join(missing)}; expected "
                f"{', '.join(keys)}, found "
                f"{', '.join(n if n.isprintable() else repr(n) for n in names) or 'no arrays'}"
            )
        return {key: read_array(path, archive, key) for key in keys}


def open_npz(path: Path, keys: tuple[str, ...]) -> zipfile.ZipFile:
    """The archive as a zip file (an .npz is one), its arrays read member by member."""
    if path.exists() and not path.is_file():  # a FIFO would block the open, a device never end
        raise DatasetError(f"{path}: not a regular file")
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as error:
        if path.is_file() and starts_like_npy(path):
            raise DatasetError(
                f"{path}: holds a single array, expected an .npz archive with {', '.join(keys)}"
            ) from None
        raise DatasetError(f"{path}: not a readable .npz archive ({error})") from None


def starts_like_npy(path: Path) -> bool:
    """Whether the file begins with the .npy magic (a single array saved with np.save)."""
    with path.open("rb") as file:
        return file.read(6) == b"\x93NUMPY"


def read_array(path: Path, archive: zipfile.ZipFile, key: str, kinds: str = "biuf") -> np.ndarray:
    """One array of an open archive, its header (dtype, shape) checked before its data is read:
    object arrays (which need pickle) are refused, and sizes over the limits are never allocated."""
    info = archive.getinfo(f"{key}.npy")
    try:
        check_member(archive, info, f"{path}: array '{key}'")
        with archive.open(info) as member:
            return read_npy(
                member,
                info.file_size,
                f"{path}: array '{key}'",
                kinds,
                check_shape=lambda shape: check_image_pixels(path, key, shape),
            )
    except ObjectArrayRefused:
        raise DatasetError(
            f"{path}: array '{key}' holds Python objects (dtype=object), which cnnlab does "
            "not load (no pickle); save it with a numeric dtype, e.g. "
            f"{key}=np.asarray({key}, dtype='uint8')"
        ) from None
    except LimitExceeded as error:
        raise DatasetError(str(error)) from None
    except ValueError as error:
        raise DatasetError(f"{path}: cannot read array '{key}': {error}") from None
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        RuntimeError,
    ) as error:
        raise DatasetError(f"{path}: cannot read array '{key}' (corrupt file?): {error}") from None


def check_image_pixels(path: Path, key: str, shape: tuple[int, ...]) -> None:
    """Images (N, H, W[, C]) no larger than CNNLAB_MAX_IMAGE_PIXELS each, before they are read."""
    if key.startswith("x_") and len(shape) in (3, 4):
        check_pixels(shape[1], shape[2], f"{path}: {key}'s images")


def flatten_labels(path: Path, key: str, labels: np.ndarray) -> np.ndarray:
    """Labels as a (N,) vector; (N, 1) is accepted and flattened, other shapes refused."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        return labels.reshape(-1)
    if labels.ndim != 1:
        raise DatasetError(
            f"{path}: {key} has shape {labels.shape}, expected (N,) integer class indices "
            "(one-hot labels are not accepted: use labels.argmax(axis=1))"
        )
    return labels


def check_images(path: Path, key: str, images: np.ndarray) -> None:
    """Images must be (N, H, W) or (N, H, W, C), numeric, finite and not empty."""
    if images.ndim not in (3, 4):
        raise DatasetError(
            f"{path}: {key} has shape {images.shape}, expected (N, H, W) or (N, H, W, C)"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"{path}: {key} holds no images (shape {images.shape})")
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise DatasetError(f"{path}: {key} has dtype {images.dtype}, expected integers or floats")
    if np.issubdtype(images.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(images)))
        if bad:
            raise DatasetError(f"{path}: {key} contains {bad} NaN or infinite values")


def check_labels(path: Path, key: str, labels: np.ndarray) -> None:
    """Labels must be non-negative integers."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{path}: {key} has dtype {labels.dtype}, expected integer class indices "
            f"(e.g. {key}.astype('int64'))"
        )
    if labels.size and labels.min() < 0:
        raise DatasetError(
            f"{path}: {key} contains negative labels (minimum {labels.min()}), "
            "expected class indices 0, 1, 2, ..."
        )
    if labels.size:
        check_class_count(path, int(labels.max()) + 1, key)


def check_class_count(path: Path, num_classes: int, key: str = "the labels") -> None:
    """A label of 2**40 must not make cnnlab build 2**40 class names."""
    try:
        check(
            "CNNLAB_MAX_CLASSES",
            num_classes,
            f"{path}: {key} (largest label {num_classes - 1})",
            "classes",
        )
    except LimitExceeded as error:
        raise DatasetError(str(error)) from None


def check_counts(path: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """One label per image."""
    if len(images) != len(labels):
        raise DatasetError(
            f"{path}: x_{split} holds {len(images)} images but y_{split} holds "
            f"{len(labels)} labels; expected one label per image"
        )


def check_same_image_shape(path: Path, x_train: np.ndarray, x_test: np.ndarray) -> None:
    """Training and test images must have the same (H, W[, C])."""
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{path}: x_train images have shape {x_train.shape[1:]} but x_test images have "
            f"shape {x_test.shape[1:]}; expected the same"
        )


def load_class_names(path: str | os.PathLike[str], num_classes: int) -> list[str]:
    """The archive's optional ``class_names`` array as strings, else ``"0", "1", ...``.

    ``num_classes`` is one more than the largest label; fewer names than that is an error.
    """
    path = Path(path)
    check_class_count(path, num_classes)
    with open_npz(path, REQUIRED_KEYS) as archive:
        if f"{CLASS_NAMES_KEY}.npy" not in archive.namelist():
            return [str(index) for index in range(num_classes)]
        names = [
            str(name) for name in read_array(path, archive, CLASS_NAMES_KEY, "biufUS").reshape(-1)
        ]
    if len(names) < num_classes:
        raise DatasetError(
            f"{path}: class_names has {len(names)} names but the labels go up to "
            f"{num_classes - 1}; expected at least {num_classes} names"
        )
    return names
