"""Hostile files and unlucky moments (issue 15).

Every case ends either with a correct result or with one clean error naming the problem:
no write follows a planted link, no file cnnlab reads can make it allocate beyond a limit
(the limits are lowered through their environment variables so that the files stay small),
and no finished epoch is lost.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab import plots
from cnnlab.cli import main
from cnnlab.datasets import load_dataset
from cnnlab.datasets.idx import read_idx
from cnnlab.datasets.npz import load_npz
from cnnlab.engine import Sequential, callbacks, layers, load_model
from cnnlab.engine.saving import atomic_write
from cnnlab.errors import CnnlabError, DatasetError

MIB = 1 << 20


def cli_run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and one `cnnlab: error:` line holding every fragment, no traceback."""
    assert "Traceback" not in err and code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def peak_allocation(function: object, *args: object) -> tuple[object, int]:
    """(result or the exception raised, peak bytes allocated meanwhile, NumPy arrays included)."""
    tracemalloc.start()
    try:
        result = function(*args)
    except Exception as err:  # noqa: BLE001 - the caller checks which
        result = err
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, peak


def tiny_model() -> Sequential:
    model = Sequential(
        [layers.Input(shape=(4,)), layers.Dense(3, activation="softmax", name="dense")], seed=0
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


# ------------------------------------------------------------------ one writer, no links
def test_atomic_write_refuses_a_symlink_and_leaves_its_target_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.txt").symlink_to(victim)
    with pytest.raises(ValueError, match=r"out\.txt is a symbolic link"):
        atomic_write(tmp_path / "out.txt", lambda file: file.write(b"overwritten"))
    assert victim.read_text() == "keep me" and (tmp_path / "out.txt").is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_figure_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep me")
    (tmp_path / "history.png").symlink_to(victim)
    with pytest.raises(ValueError, match="symbolic link"):
        plots.plot_history({"loss": [1.0, 0.5]}, tmp_path / "history.png")
    assert victim.read_bytes() == b"keep me"


@pytest.mark.parametrize("writer", ["figure", "csv_logger"])
def test_an_existing_path_is_replaced_never_opened_for_writing(tmp_path: Path, writer: str) -> None:
    """A hard link shares its file with the victim: writing into the path would change both."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    target = tmp_path / ("history.png" if writer == "figure" else "log.csv")
    os.link(victim, target)
    if writer == "figure":
        plots.plot_history({"loss": [1.0, 0.5]}, target)
    else:
        logger = callbacks.CSVLogger(target)
        logger.on_train_begin()
        logger.on_epoch_end(0, {"loss": 0.5})
        logger.on_train_end()
        assert target.read_bytes() == b"epoch,loss,val_loss\r\n0,0.5,NA\r\n"
    assert victim.read_bytes() == b"keep me" and target.read_bytes() != b"keep me"


def test_a_study_figures_folder_linked_elsewhere_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "study-figures").symlink_to(elsewhere)
    with pytest.raises(ValueError, match=r"study-figures is a symbolic link"):
        plots.plot_history({"loss": [1.0, 0.5]}, tmp_path / "study-figures" / "history.png")
    assert list(elsewhere.iterdir()) == []


def test_a_run_directory_with_figures_linked_elsewhere_is_refused(tmp_path: Path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "figures").symlink_to(elsewhere)
    code, _, err = cli_run(
        capsys,
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--train-size",
        "64",
        "--test-size",
        "20",
        "--batch-size",
        "32",
        "--out",
        tmp_path / "run",
    )
    assert_one_line_error(code, err, "figures is a symbolic link")
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------------------ bounds
def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def replace_member(
    path: Path, name: str, content: bytes, compression: int = zipfile.ZIP_DEFLATED
) -> None:
    """Rewrite the zip at path with member ``name`` holding ``content``."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = content
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(
                member, data, compress_type=compression if member == name else zipfile.ZIP_STORED
            )


def test_a_model_member_that_inflates_beyond_the_limit_is_refused_before_inflating(
    tmp_path, monkeypatch
) -> None:
    path = tmp_path / "m.cnnlab"
    tiny_model().save(path)
    replace_member(
        path, "arrays/dense/kernel.npy", npy_bytes(np.zeros(16 * MIB, np.uint8))
    )  # 16 MB of zeros
    assert path.stat().st_size < MIB
    monkeypatch.setenv("CNNLAB_MAX_FILE_BYTES", str(4 * MIB))
    error, peak = peak_allocation(load_model, path)
    assert isinstance(error, ValueError) and "CNNLAB_MAX_FILE_BYTES" in str(error), error
    assert peak < 2 * MIB


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """Only the header of a .npy file: what a reader sees before any data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def test_a_model_member_whose_header_declares_a_huge_shape_is_refused(tmp_path) -> None:
    path = tmp_path / "m.cnnlab"
    tiny_model().save(path)
    replace_member(
        path,
        "arrays/dense/kernel.npy",
        npy_header((400_000, 300_000)) + bytes(48),
        zipfile.ZIP_STORED,
    )
    error, peak = peak_allocation(load_model, path)
    assert isinstance(error, ValueError) and "dense/kernel" in str(error), error
    assert "CNNLAB_MAX_FILE_BYTES" in str(error) and peak < MIB


def test_a_forged_compressed_size_in_the_zip_directory_allocates_nothing(tmp_path) -> None:
    """Found by tests/test_fuzz_readers.py: zipfile asks the file for the declared compressed size
    at once."""
    path = tmp_path / "m.cnnlab"
    tiny_model().save(path)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # meta.json's entry in the central directory
    data[entry + 20 : entry + 24] = struct.pack("<I", 50 * MIB)
    path.write_bytes(bytes(data))
    error, peak = peak_allocation(load_model, path)
    assert isinstance(error, ValueError) and "more than the whole file" in str(error), error
    assert peak < 2 * MIB


def idx_header(dims: tuple[int, ...]) -> bytes:
    return (0x0800 | len(dims)).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def test_an_idx_gzip_that_inflates_beyond_its_header_is_refused_without_inflating_it(
    tmp_path,
) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header((10, 28, 28)) + bytes(64 * MIB), compresslevel=9))
    error, peak = peak_allocation(read_idx, path)
    assert isinstance(error, DatasetError) and "unexpected trailing data" in str(error), error
    assert peak < 8 * MIB


def test_an_idx_header_declaring_too_much_is_refused_before_reading(tmp_path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header((6_000_000, 28, 28)) + bytes(1000)))
    with pytest.raises(
        DatasetError,
        match=r"4,704,000,000 bytes, over the limit of 1,073,741,824 \(set CNNLAB_MAX_FILE_BYTES",
    ):
        read_idx(path)


def npz_with_member(path: Path, name: str, content: bytes, small: dict[str, np.ndarray]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in small.items():
            archive.writestr(f"{key}.npy", npy_bytes(array))
        archive.writestr(name, content)
    return path


def test_an_npz_of_huge_images_is_refused_from_its_header(tmp_path) -> None:
    forged = npy_header((2, 32768, 32768), "|u1")
    small = {
        "y_train": np.zeros(2, np.int64),
        "x_test": np.zeros((1, 3, 3), np.uint8),
        "y_test": np.zeros(1, np.int64),
    }
    path = npz_with_member(tmp_path / "bomb.npz", "x_train.npy", forged + bytes(100), small)
    error, peak = peak_allocation(load_npz, path)
    assert isinstance(error, DatasetError) and "CNNLAB_MAX_IMAGE_PIXELS" in str(error), error
    assert "32768 x 32768" in str(error) and peak < MIB


def test_a_huge_label_does_not_build_that_many_class_names(tmp_path) -> None:
    arrays = {
        "x_train": np.zeros((4, 3, 3), np.uint8),
        "y_train": np.array([0, 1, 2, 2**40]),
        "x_test": np.zeros((1, 3, 3), np.uint8),
        "y_test": np.zeros(1, np.int64),
    }
    np.savez(tmp_path / "labels.npz", **arrays)
    with pytest.raises(DatasetError, match=r"largest label 1099511627776.*CNNLAB_MAX_CLASSES"):
        load_dataset(str(tmp_path / "labels.npz"))


def test_the_class_limit_can_be_raised(tmp_path, monkeypatch) -> None:
    arrays = {
        "x_train": np.zeros((2, 3, 3), np.uint8),
        "y_train": np.array([0, 200_000]),
        "x_test": np.zeros((1, 3, 3), np.uint8),
        "y_test": np.zeros(1, np.int64),
    }
    np.savez(tmp_path / "labels.npz", **arrays)
    with pytest.raises(DatasetError, match="CNNLAB_MAX_CLASSES"):
        load_dataset(str(tmp_path / "labels.npz"))
    monkeypatch.setenv("CNNLAB_MAX_CLASSES", "300000")
    assert len(load_dataset(str(tmp_path / "labels.npz")).class_names) == 200_001


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_a_model_config_is_counted_before_it_is_built(tmp_path, capsys) -> None:
    config = {
        "layers": [
            {
                "class_name": "Conv2D",
                "config": {"name": "huge", "filters": 10**9, "kernel_size": 3},
            },
            {"class_name": "GlobalAveragePooling2D", "config": {}},
        ]
    }
    code, _, err = cli_run(
        capsys,
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--train-size",
        "64",
        "--model",
        write_json(tmp_path / "huge.json", config),
        "--out",
        tmp_path / "run",
    )
    assert_one_line_error(
        code, err, "Conv2D 'huge'", "over the limit of 100,000,000", "CNNLAB_MAX_PARAMS"
    )


def test_the_parameter_limit_applies_to_built_in_models_too(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CNNLAB_MAX_PARAMS", "1000")
    code, _, err = cli_run(
        capsys,
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--train-size",
        "64",
        "--out",
        tmp_path / "run",
    )
    assert_one_line_error(code, err, "over the limit of 1,000", "CNNLAB_MAX_PARAMS")


def test_a_saved_model_with_a_huge_layer_is_refused_before_allocating(tmp_path) -> None:
    path = tmp_path / "m.cnnlab"
    tiny_model().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members["meta.json"])
    meta["model_config"]["layers"][-1]["config"]["units"] = 10**9
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    error, peak = peak_allocation(load_model, path)
    assert isinstance(error, ValueError) and "CNNLAB_MAX_PARAMS" in str(error), error
    assert peak < 8 * MIB


@pytest.mark.parametrize(
    "settings",
    [
        'mode = "random"\nn_trials = 1000000000',
        "repeats = 1000000000",
        'mode = "random"\nn_trials = 50\nrepeats = 100000',
    ],
)
def test_every_study_mode_bounds_its_trials(tmp_path, settings: str) -> None:
    from cnnlab.study.spec import parse_spec

    text = f'{settings}\n[axes]\n"conv2d.filters" = [8, 16]\n'
    with pytest.raises(CnnlabError, match=r"trials.*100,000.*CNNLAB_MAX_TRIALS"):
        parse_spec(text, "s.toml")


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_model_file_nested_100000_deep_is_one_clear_error(tmp_path, suffix: str, capsys) -> None:
    depth = 100_000
    text = (
        "[" * depth + "]" * depth if suffix == ".json" else "layers = " + "[" * depth + "]" * depth
    )
    (tmp_path / f"deep{suffix}").write_text(text)
    code, _, err = cli_run(capsys, "summary", tmp_path / f"deep{suffix}")
    assert_one_line_error(code, err, f"deep{suffix}", "nested more than 64 levels")


def test_a_study_spec_nested_100000_deep_is_one_clear_error() -> None:
    from cnnlab.study.spec import parse_spec

    with pytest.raises(CnnlabError, match=r"deep\.toml: .*nested more than 64 levels"):
        parse_spec("x = " + "[" * 100_000 + "]" * 100_000, "deep.toml")


def png_declaring(width: int, height: int) -> bytes:
    """A 1x1 grey PNG whose header claims width x height (the data stays tiny)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("hostile") / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--train-size",
                "64",
                "--test-size",
                "20",
                "--batch-size",
                "32",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    return run


@pytest.mark.parametrize(
    "side", [20_000, 10_000]
)  # Pillow's error (> 2x its limit) and its warning
def test_a_decompression_bomb_image_is_one_clear_error(
    tiny_run: Path, tmp_path: Path, side: int, capsys
) -> None:
    (tmp_path / "bomb.png").write_bytes(png_declaring(side, side))
    code, _, err = cli_run(capsys, "predict", tiny_run, tmp_path / "bomb.png")
    assert_one_line_error(code, err, "bomb.png", f"{side * side} pixels", "CNNLAB_MAX_IMAGE_PIXELS")


def test_the_image_pixel_limit_is_checked_before_decoding(
    tiny_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    Image.new("L", (40, 30)).save(tmp_path / "photo.png")
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "1000")
    code, _, err = cli_run(capsys, "predict", tiny_run, tmp_path / "photo.png")
    assert_one_line_error(
        code,
        err,
        "photo.png",
        "1200 pixels) exceeds limit of 1000 pixels",
        "CNNLAB_MAX_IMAGE_PIXELS",
    )
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "1200")
    assert cli_run(capsys, "predict", tiny_run, tmp_path / "photo.png")[0] == 0


def test_a_16_bit_image_is_scaled_by_its_real_range(tmp_path: Path) -> None:
    from cnnlab.images import load_image

    values = np.array([[0, 16384], [32768, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        assert image.mode.startswith("I")
    pixels = load_image(tmp_path / "deep.png", (2, 2, 1), invert="no")
    np.testing.assert_allclose(pixels[..., 0], values / 65535, atol=1e-6)
    grey8 = np.array([[0, 64], [128, 255]], np.uint8)
    Image.fromarray(grey8).save(tmp_path / "grey.png")
    np.testing.assert_allclose(
        load_image(tmp_path / "grey.png", (2, 2, 1), invert="no")[..., 0], grey8 / 255, atol=1e-6
    )


# ------------------------------------------------------------------- no finished work lost
TINY_TRAIN = [
    "train",
    "--dataset",
    "digits",
    "--epochs",
    "2",
    "--train-size",
    "64",
    "--test-size",
    "20",
    "--batch-size",
    "32",
]


def test_the_checkpoint_stays_until_the_run_directory_is_whole(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import cnnlab.report

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cnnlab.report, "render_run_report", disk_full)
    code, _, err = cli_run(capsys, *TINY_TRAIN, "--out", tmp_path / "run")
    assert code == 2 and "Traceback" not in err
    assert (
        err.strip().splitlines()[-1] == "cnnlab: error: [Errno 28] No space left on device"
    )  # after the epoch lines
    assert (tmp_path / "run" / "checkpoint.cnnlab").is_file()  # both epochs kept
    monkeypatch.undo()
    code, _, err = cli_run(capsys, "train", "--resume", tmp_path / "run")
    assert code == 0, err
    assert (
        not (tmp_path / "run" / "checkpoint.cnnlab").exists()
        and (tmp_path / "run" / "report.html").is_file()
    )
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["epoch_seconds"]) == 2


def test_a_plain_fit_with_backup_and_restore_deletes_its_checkpoint_as_keras_does(
    tmp_path: Path,
) -> None:
    model = tiny_model()
    x, y = np.random.default_rng(0).random((8, 4)), np.eye(3)[np.arange(8) % 3]
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.BackupAndRestore(tmp_path)])
    assert not (tmp_path / "checkpoint.cnnlab").exists()


def test_a_second_train_into_a_directory_being_written_refuses(tmp_path: Path, capsys) -> None:
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".cnnlab.lock", "w") as lock:  # what the first `cnnlab train --out run` holds
        fcntl.flock(lock, fcntl.LOCK_EX)
        code, _, err = cli_run(capsys, *TINY_TRAIN, "--out", run)
    assert_one_line_error(code, err, "is being written by another cnnlab command")
    assert sorted(p.name for p in run.iterdir()) == [".cnnlab.lock", "figures"]


def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path: Path, capsys) -> None:
    assert cli_run(capsys, *TINY_TRAIN, "--out", tmp_path / "run")[0] == 0
    before = (tmp_path / "run" / "config.json").read_text()
    code, _, err = cli_run(capsys, *TINY_TRAIN, "--seed", "5", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "holds a finished run", "--overwrite")
    assert (tmp_path / "run" / "config.json").read_text() == before
    (tmp_path / "run" / "figures" / "old_only.png").write_bytes(b"a figure of the old run")
    assert (
        cli_run(capsys, *TINY_TRAIN, "--seed", "5", "--out", tmp_path / "run", "--overwrite")[0]
        == 0
    )
    assert json.loads((tmp_path / "run" / "config.json").read_text())["training"]["seed"] == 5
    assert not (tmp_path / "run" / "figures" / "old_only.png").exists()


def test_data_with_one_class_is_refused_before_training(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "one.npz",
        x_train=rng.random((40, 8, 8)),
        y_train=np.zeros(40, np.int64),
        x_test=rng.random((10, 8, 8)),
        y_test=np.zeros(10, np.int64),
    )
    code, out, err = cli_run(
        capsys,
        "train",
        "--dataset",
        tmp_path / "one.npz",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
    )
    assert_one_line_error(code, err, "only one class", "at least two")
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("label", [-1, 3])
def test_the_pipeline_refuses_labels_outside_the_classes(tmp_path: Path, label: int) -> None:
    from cnnlab.training import PreparedData, TrainSettings, prepare, train

    rng = np.random.default_rng(0)
    y_train = np.arange(40) % 3
    y_train[7] = label
    data = PreparedData(
        "mine",
        ["a", "b", "c"],
        rng.random((40, 8, 8, 1), np.float32),
        y_train,
        rng.random((10, 8, 8, 1), np.float32),
        np.arange(10) % 3,
    )
    with pytest.raises(
        CnnlabError,
        match=rf"training label {label} is not one of the 3 classes \(expected 0 to 2\)",
    ):
        train(
            prepare(TrainSettings(dataset="mine", epochs=1, batch_size=8), data), tmp_path / "run"
        )


@pytest.mark.parametrize(("label", "method"), [(-1, "fit"), (3, "fit"), (7, "evaluate")])
def test_the_engine_refuses_sparse_labels_outside_the_outputs(label: int, method: str) -> None:
    model = tiny_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    x, y = np.random.default_rng(0).random((6, 4)), np.array([0, 1, 2, 0, 1, label])
    with pytest.raises(
        ValueError, match=rf"{method}: label {label} is not a class index of the model's 3 outputs"
    ):
        getattr(model, method)(x, y, verbose=0)


@pytest.mark.parametrize("name", ["conv\0one", "a/b", "..\\evil"])
def test_layer_names_that_cannot_be_saved_are_refused_at_creation(name: str) -> None:
    with pytest.raises(ValueError, match=r"Dense: layer name .* is not allowed"):
        layers.Dense(3, name=name)


def test_predict_on_zero_images_returns_an_empty_array_of_the_output_shape() -> None:
    model = tiny_model()
    result = model.predict(np.zeros((0, 4), np.float32), verbose=0)
    assert result.shape == (0, 3) and result.dtype == np.float32


# --------------------------------------------------------------- metadata read back, checked
def rewrite_meta(path: Path, change: object) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members["meta.json"])
    change(meta)
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture()
def interrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run whose two epochs finished and whose files were never written (checkpoint kept)."""
    import cnnlab.report

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(cnnlab.report, "render_run_report", fail)
        assert main([*TINY_TRAIN, "--out", str(tmp_path / "run")]) == 2
    assert (tmp_path / "run" / "checkpoint.cnnlab").is_file()
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda meta: meta.update(epoch="2"), "'epoch' must be an integer"),
        (lambda meta: meta.update(epoch=-1), "'epoch' must be at least 0"),
        (lambda meta: meta.update(epoch=7), r"'\w+' holds 2 values for 7 finished epochs"),
        (lambda meta: meta["history"].update(loss="low"), r"'history'\['loss'\] must be a list"),
        (
            lambda meta: meta.update(rng_states={"shuffle": {"state": 3}}),
            "'rng_states' does not fit this model",
        ),
        (lambda meta: meta.pop("model_config"), "'model_config' is missing"),
    ],
)
def test_a_tampered_checkpoint_is_one_line_naming_the_field(
    interrupted_run: Path, capsys, change, field
) -> None:
    capsys.readouterr()
    rewrite_meta(interrupted_run / "checkpoint.cnnlab", change)
    code, _, err = cli_run(capsys, "train", "--resume", interrupted_run)
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith("cnnlab: error: ")
        and "checkpoint.cnnlab: meta.json" in last
        and re.search(field, last)
    ), err


def test_an_unknown_checkpoint_field_is_reported_and_ignored(interrupted_run: Path, capsys) -> None:
    from cnnlab.engine.metadata import NewerFieldWarning

    rewrite_meta(interrupted_run / "checkpoint.cnnlab", lambda meta: meta.update(ema_decay=0.99))
    with pytest.warns(
        NewerFieldWarning,
        match=r"checkpoint\.cnnlab: meta\.json: unknown field 'ema_decay' ignored",
    ):
        code, _, err = cli_run(capsys, "train", "--resume", interrupted_run)
    assert code == 0, err
    assert (interrupted_run / "model.cnnlab").is_file() and not (
        interrupted_run / "checkpoint.cnnlab"
    ).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda training: training.update(epochs="many"),
            r"config\.json: training: field 'epochs' must be an integer",
        ),
        (
            lambda training: training.update(batch_size=0),
            r"config\.json: training: batch size must be at least 1",
        ),
        (
            lambda training: training.update(mixed_precision=True),
            r"config\.json: unknown setting 'training\.mixed_precision'",
        ),
    ],
)
def test_a_tampered_run_config_is_one_line_naming_the_field(
    interrupted_run: Path, capsys, change, message
) -> None:
    capsys.readouterr()
    config = json.loads((interrupted_run / "config.json").read_text())
    change(config["training"])
    (interrupted_run / "config.json").write_text(json.dumps(config))
    code, _, err = cli_run(capsys, "train", "--resume", interrupted_run)
    assert_one_line_error(code, err)
    assert re.search(message, err), err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda meta: meta.update(model_class=5),
            r"meta\.json: field 'model_class' must be a string",
        ),
        (
            lambda meta: meta.update(compile_config={"optimizer": 5}),
            r"meta\.json: field 'compile_config' is incomplete",
        ),
        (
            lambda meta: meta.update(compile_config=[1]),
            r"meta\.json: field 'compile_config' must be an object or null",
        ),
    ],
)
def test_a_tampered_model_file_is_one_clear_error(tmp_path: Path, change, message) -> None:
    tiny_model().save(tmp_path / "m.cnnlab")
    rewrite_meta(tmp_path / "m.cnnlab", change)
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path / "m.cnnlab")


def test_tampered_metrics_are_one_line_when_the_report_is_rebuilt(
    tiny_run: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["epoch_seconds"] = ["fast"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    code, _, err = cli_run(capsys, "report", run)
    assert_one_line_error(code, err, "metrics.json", "'epoch_seconds'", "must be a number")


def study_with_one_trial(folder: Path) -> Path:
    from cnnlab.study.store import StudyStore
    from cnnlab.study.trial import TrialPlan, TrialResult

    with StudyStore(folder / "study.sqlite") as store:
        store.attach("s", "fingerprint", {"axes": {"conv2d.filters": [8, 16]}}, "")
        store.add_trials(
            [
                TrialPlan("t0", 0, {"conv2d.filters": 8}, 0, 0),
                TrialPlan("t1", 1, {"conv2d.filters": 16}, 0, 0),
            ]
        )
        store.record(
            TrialResult(
                "t0", "done", metrics={"test_accuracy": 0.9}, history={"loss": [1.0]}, params=10
            )
        )
    return folder / "study.sqlite"


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ("metrics = '[1, 2]'", r"trial 't0': field 'metrics' must be an object"),
        (
            'metrics = \'{"test_accuracy": "high"}\'',
            r"trial 't0': metrics: field 'test_accuracy' must be a number",
        ),
        ("metrics = 'not json'", r"trial 't0': column 'metrics' is not valid JSON"),
        ("params = 'many'", r"trial 't0': field 'params' must be an integer or null"),
        ("metrics = '" + "[" * 5000 + "]" * 5000 + "'", r"nested more than 64 levels"),
    ],
)
def test_tampered_study_rows_are_one_clear_error(tmp_path: Path, update: str, message: str) -> None:
    import sqlite3

    from cnnlab.study.store import StudyStore

    db = study_with_one_trial(tmp_path)
    with sqlite3.connect(db) as connection:
        connection.execute(f"UPDATE trials SET {update} WHERE key = 't0'")
    connection.close()
    with StudyStore(db, create=False) as store, pytest.raises(CnnlabError, match=message):
        store.trials()


def test_a_full_disk_under_the_study_database_is_one_clear_error(tmp_path: Path) -> None:
    from cnnlab.study.store import StudyStore
    from cnnlab.study.trial import TrialResult

    db = study_with_one_trial(tmp_path)
    with StudyStore(db) as store:
        pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
        store.connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
        result = TrialResult("t1", "done", metrics={"test_accuracy": 0.5}, error="x" * 100_000)
        with pytest.raises(
            CnnlabError,
            match=r"study\.sqlite: cannot write the study database \(database or disk is full\)",
        ):
            store.record(result)
        assert [t["status"] for t in store.trials()] == [
            "done",
            "pending",
        ]  # the finished trial is kept


def test_a_full_disk_during_a_study_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    import sqlite3

    from cnnlab.study.store import StudyStore

    record, calls = StudyStore.record, []

    def record_until_the_disk_fills(self: StudyStore, result: object) -> None:
        calls.append(result)
        if len(calls) == 2:
            with self.transaction():
                raise sqlite3.OperationalError("database or disk is full")
        record(self, result)

    monkeypatch.setattr(StudyStore, "record", record_until_the_disk_fills)
    spec = tiny_study_spec(tmp_path, "repeats = 3\n")
    code, _, err = cli_run(capsys, "study", spec, "--out", tmp_path / "out", "--jobs", "1")
    assert code == 2 and "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "study.sqlite: cannot write the study database (database or disk is "
            "full); the trials recorded before are kept"
        )
    )
    monkeypatch.undo()
    with StudyStore(tmp_path / "out" / "study.sqlite", create=False) as store:
        assert [t["status"] for t in store.trials()] == [
            "done",
            "running",
            "pending",
        ]  # the next run redoes the last two


def tiny_study_spec(folder: Path, header: str = "") -> Path:
    layers_ = [
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "softmax"}},
    ]
    (folder / "tiny.json").write_text(json.dumps({"layers": layers_}))
    (folder / "s.toml").write_text(
        f'model = "tiny.json"\n{header}[training]\ndataset = "digits"\nepochs = 1\n'
        'train_size = 100\ntest_size = 50\nbatch_size = 16\n[axes]\n"dense.units" = [10]\n'
    )
    return folder / "s.toml"


def foreign_database(path: Path) -> Path:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    connection.execute("INSERT INTO users (email) VALUES ('a@example.org')")
    connection.commit()
    connection.close()
    return path


def test_another_applications_database_is_refused_before_it_is_changed(
    tmp_path: Path, capsys
) -> None:
    import sqlite3

    db = foreign_database(tmp_path / "app.sqlite")
    before = db.read_bytes()
    code, _, err = cli_run(
        capsys,
        "study",
        tiny_study_spec(tmp_path),
        "--db",
        db,
        "--out",
        tmp_path / "out",
        "--jobs",
        "1",
    )
    assert_one_line_error(code, err, "app.sqlite is not a cnnlab study database", "users")
    assert db.read_bytes() == before
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()


def test_a_study_database_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    from cnnlab.study.store import StudyStore

    db = study_with_one_trial(tmp_path / "real")
    (tmp_path / "link.sqlite").symlink_to(db)
    with pytest.raises(CnnlabError, match=r"link\.sqlite is a symbolic link"):
        StudyStore(tmp_path / "link.sqlite")


def test_a_cnnlab_study_database_is_still_opened(tmp_path: Path) -> None:
    from cnnlab.study.store import StudyStore

    db = study_with_one_trial(tmp_path)
    with StudyStore(db) as store:
        assert [t["key"] for t in store.trials()] == ["t0", "t1"]


# --------------------------------------------------------------------- user text in figures
def test_hostile_class_names_train_and_report_escaped(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    names = np.array(["$\\foo$", "<script>alert(1)</script>", "n" * 200_000])
    np.savez(
        tmp_path / "names.npz",
        x_train=rng.random((60, 8, 8)),
        y_train=np.arange(60) % 3,
        x_test=rng.random((15, 8, 8)),
        y_test=np.arange(15) % 3,
        class_names=names,
    )
    code, _, err = cli_run(
        capsys,
        "train",
        "--dataset",
        tmp_path / "names.npz",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        tmp_path / "run",
    )
    assert code == 0, err
    report = (tmp_path / "run" / "report.html").read_text()
    assert (
        "<script>alert(1)</script>" not in report
        and "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    )
    assert {"confusion_matrix.png", "per_class.png", "mistakes.png"} <= {
        p.name for p in (tmp_path / "run" / "figures").iterdir()
    }


def test_display_text_escapes_mathtext_and_shortens() -> None:
    assert plots.display_text("$\\foo$") == "\\$\\foo\\$"
    assert plots.display_text("n" * 200_000) == "n" * 39 + "…"
    assert plots.display_text("two\nlines") == "two lines"


@pytest.mark.parametrize(
    "change",
    [
        lambda config, metrics: (config.pop("dataset"), config["training"].pop("dataset")),
        lambda config, metrics: metrics.update(per_class=[1, "a"]),
        lambda config, metrics: metrics.update(confusion_matrix="full"),
    ],
)
def test_tampered_run_files_are_one_line_for_every_reader(
    tiny_run: Path, tmp_path: Path, capsys, change
) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    config, metrics = (
        json.loads((run / name).read_text()) for name in ("config.json", "metrics.json")
    )
    change(config, metrics)
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(metrics))
    codes = [
        cli_run(capsys, *command)
        for command in (["report", run], ["evaluate", run, "--test-size", "10"])
    ]
    for code, _, err in codes:
        assert code == 0 or (
            code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        ), err
    assert any(code == 2 for code, _, _ in codes)


@pytest.mark.parametrize(
    ("plant", "fragment"),
    [
        (
            lambda run: (run / "figures" / "endless.png").symlink_to("/dev/zero"),
            "endless.png: not a regular file",
        ),
        (
            lambda run: (run / "history.csv").write_bytes(b"epoch,loss\n1,\xff\n"),
            "history.csv: not a readable history",
        ),
        (
            lambda run: (run / "history.csv").write_text("epoch,loss\n1," + "9" * 200_000 + "\n"),
            "not a readable history",
        ),
        (
            lambda run: (
                (run / "metrics.json").unlink(),
                (run / "metrics.json").symlink_to("/dev/zero"),
            ),
            "metrics.json",
        ),
    ],
)
def test_files_planted_in_a_run_are_read_with_bounds(
    tiny_run: Path, tmp_path: Path, capsys, plant, fragment
) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    plant(run)
    code, _, err = cli_run(capsys, "report", run)
    assert_one_line_error(code, err, fragment)


@pytest.mark.parametrize("reader", ["idx", "npz"])
def test_a_fifo_or_device_in_place_of_a_data_file_is_refused_without_blocking(
    tmp_path: Path, reader: str
) -> None:
    name = "train-images-idx3-ubyte" if reader == "idx" else "data.npz"
    os.mkfifo(tmp_path / name)  # opening it for reading would wait for a writer forever
    with pytest.raises(DatasetError, match=r"not a regular file"):
        read_idx(tmp_path / name) if reader == "idx" else load_npz(tmp_path / name)
