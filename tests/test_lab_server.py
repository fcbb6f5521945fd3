"""`cnnlab lab`: the real server in a subprocess on 127.0.0.1
(token, Host, Origin, paths, errors, sessions, pushes)."""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from cnnlab import runs  # noqa: E402
from cnnlab.cli import main  # noqa: E402
from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.lab.playground import PlaygroundSettings  # noqa: E402
from cnnlab.lab.server import LabState, is_loopback  # noqa: E402
from cnnlab.lab.workspace import OutsideRoot, resolve_inside  # noqa: E402

START_TIMEOUT = 60.0


@dataclass
class Lab:
    """A running `cnnlab lab` subprocess: its base URL, token and folder."""

    process: subprocess.Popen
    base: str
    token: str
    root: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, login: bool = True) -> httpx.Client:
        client = httpx.Client(base_url=self.base, timeout=30)
        self.clients.append(client)
        if login:
            response = client.get(f"/?token={self.token}")
            assert response.status_code == 303
        return client

    def stop(self) -> int:
        """Ctrl-C, as a user would; the exit code."""
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process.stdout.close()


def start_lab(root: Path) -> Lab:
    """Start `cnnlab lab ROOT --port 0 --no-browser` and wait for the line with its URL
    (its sign of readiness)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", "lab", str(root), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    deadline, seen = time.monotonic() + START_TIMEOUT, []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if "?token=" in line:
            url = line.split(" at ", 1)[1].strip()
            base, token = url.split("/?token=")
            return Lab(process, base, token, root)
    process.kill()
    raise AssertionError(f"the lab did not start: {''.join(seen)}")


def train_digits_run(run_dir: Path, epochs: int = 3) -> Path:
    """A small but real `cnnlab train --dataset digits` run."""
    from cnnlab.training import TrainSettings, train

    train(TrainSettings(dataset="digits", epochs=epochs, seed=0), run_dir)
    return run_dir


def make_study(root: Path, name: str = "study-demo", trials: int = 4) -> Path:
    """A study folder with ``trials`` finished trials (accuracies 0.5, 0.6, ...)."""
    from cnnlab.study.store import StudyStore
    from cnnlab.study.trial import TrialPlan

    folder = root / name
    with StudyStore(folder / "study.sqlite") as store:
        store.attach(name, "fingerprint", {"axes": {"conv2d.filters": [8, 16]}}, "")
        plans = [
            TrialPlan(f"t{i}", i, {"conv2d.filters": [8, 16, 32, 4][i % 4]}, i, 0)
            for i in range(trials + 1)
        ]
        store.add_trials(plans)
        for i in range(trials):
            record_trial(store, i)
    return folder


def record_trial(store, i: int) -> None:
    from cnnlab.study.trial import TrialResult

    store.record(
        TrialResult(
            f"t{i}",
            "done",
            metrics={"test_accuracy": 0.5 + 0.1 * i, "test_loss": 1.0 - 0.1 * i},
            history={"loss": [1.0, 0.5]},
            params=100 + i,
            seconds=1.5 + i,
            finished=runs.now_iso(),
        )
    )


def iter_sse(client: httpx.Client, url: str, timeout: float = 30.0) -> Iterator[tuple[str, dict]]:
    """The server-sent events of ``url`` as (event, data), as they come."""
    event = None
    with client.stream("GET", url, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                yield event, json.loads(line[5:])


def sse_events(
    client: httpx.Client, url: str, count: int, timeout: float = 30.0
) -> list[tuple[str, dict]]:
    """The first ``count`` server-sent events of ``url``."""
    events = []
    for event in iter_sse(client, url, timeout):
        events.append(event)
        if len(events) >= count:
            break
    return events


def listen(client: httpx.Client, url: str, count: int) -> queue.Queue:
    """A thread that puts the first ``count`` events of ``url`` into the queue it returns."""
    events: queue.Queue = queue.Queue()

    def run() -> None:
        for seen, event in enumerate(iter_sse(client, url), start=1):
            events.put(event)
            if seen == count:
                break

    threading.Thread(target=run, daemon=True).start()
    return events


def png_data_url(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab") / "runs"
    root.mkdir()
    train_digits_run(root / "digits")
    make_study(root)
    (root.parent / "outside.txt").write_text("not for the lab")
    os.symlink(root.parent / "outside.txt", root / "link-out.txt")
    server = start_lab(root)
    yield server
    assert server.stop() == 0


# ----------------------------------------------------------------------------- token, Host, Origin
def test_requests_without_the_token_are_refused(lab: Lab) -> None:
    client = lab.client(login=False)
    for path in ("/", "/playground", "/static/lab.js", "/api/entries", "/api/run?path=digits"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "token" in response.text
    assert client.get("/api/entries", headers={"X-Cnnlab-Token": "wrong"}).status_code == 403
    assert client.post("/api/playground", json={}).status_code == 403
    assert (
        client.get(
            "/api/entries", headers={"Cookie": f"cnnlab_lab_{lab.base.rsplit(':', 1)[1]}=guess"}
        ).status_code
        == 403
    )


def test_the_token_in_the_first_url_sets_a_cookie_and_leaves_the_url(lab: Lab) -> None:
    client = lab.client(login=False)
    response = client.get(f"/playground?seed=4&token={lab.token}")
    assert response.status_code == 303
    assert response.headers["location"] == "/playground?seed=4"
    cookie = response.headers["set-cookie"]
    assert (
        lab.token in cookie and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    )
    page = client.get("/playground")
    assert page.status_code == 200 and "cnnlab lab" in page.text
    assert client.get("/static/lab.js").status_code == 200
    assert (
        lab.client(login=False)
        .get("/api/entries", headers={"X-Cnnlab-Token": lab.token})
        .status_code
        == 200
    )


def test_another_origin_or_host_is_refused(lab: Lab) -> None:
    client = lab.client()
    before = client.get("/api/entries").json()
    for origin in (
        "http://evil.example",
        "null",
        lab.base.replace("127.0.0.1", "localhost"),
        lab.base + "0",
    ):
        response = client.post("/api/playground", json={"settings": {}}, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert "origin" in response.text
    assert client.get("/api/entries", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    host = lab.base.split("//")[1]
    assert (
        client.get(
            "/api/entries", headers={"Host": "evil.example:" + host.split(":")[1]}
        ).status_code
        == 403
    )
    assert client.get("/api/entries", headers={"Origin": lab.base}).status_code == 200
    assert client.get("/api/entries").json() == before


def test_hosts_and_loopback() -> None:
    state = LabState(root=Path("."))
    assert (
        state.allows_host("127.0.0.1")
        and state.allows_host("localhost")
        and state.allows_host("::1")
    )
    assert not state.allows_host("evil.example")
    assert LabState(root=Path("."), host="192.168.1.5").allows_host("192.168.1.5")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


# ----------------------------------------------------------------------------- paths
def test_paths_that_leave_the_folder_are_refused(lab: Lab) -> None:
    client = lab.client()
    for path in (
        "../outside.txt",
        "digits/../../outside.txt",
        "/etc/passwd",
        str(lab.root.parent / "outside.txt"),
        "link-out.txt",
        "..\\outside.txt",
        "C:\\Windows\\win.ini",
    ):
        for endpoint in ("/api/file", "/api/run", "/api/study"):
            response = client.get(endpoint, params={"path": path})
            assert response.status_code == 403, (endpoint, path, response.text)
            assert "not for the lab" not in response.text
    assert (
        client.get("/api/file", params={"path": "digits/config.json"}).json()["dataset"] == "digits"
    )


def test_resolve_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert resolve_inside(tmp_path, "a") == (tmp_path / "a").resolve()
    assert resolve_inside(tmp_path, "") == tmp_path.resolve()
    for bad in ("..", "a/../..", "/tmp", "a/\x00"):
        with pytest.raises(OutsideRoot):
            resolve_inside(tmp_path, bad)


def test_a_missing_run_is_a_404_with_a_message_and_the_server_keeps_serving(lab: Lab) -> None:
    client = lab.client()
    response = client.get("/api/run", params={"path": "no-such-run"})
    assert response.status_code == 404
    assert "no run at 'no-such-run'" in response.json()["error"]
    assert (
        client.post(
            "/api/run/explain", params={"path": "no-such-run"}, json={"index": 0}
        ).status_code
        == 404
    )
    assert client.get("/api/run").status_code == 400
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/run", params={"path": "digits"}).status_code == 200


# ----------------------------------------------------------------------------- playground
def test_a_bad_expression_is_a_400_with_a_message_and_the_server_keeps_serving(lab: Lab) -> None:
    client = lab.client()
    for expression, message in (
        ("x +* y", "not valid"),
        ("__import__('os').system('true')", "__import__"),
        ("x > 100", "nothing to learn"),
    ):
        response = client.post("/api/playground", json={"settings": {"function": expression}})
        assert response.status_code == 400, expression
        assert message in response.json()["error"]
    response = client.post("/api/playground", json={"settings": {"layers": "8,x"}})
    assert response.status_code == 400 and "layers" in response.json()["error"]
    assert client.post("/api/playground", content="not json").status_code == 400
    assert client.post("/api/playground", json={"settings": ["ring-band"]}).status_code == 400
    response = client.post(
        "/api/playground", json={"settings": {"function": "x*y > 0", "samples": "400"}}
    )
    assert response.status_code == 200
    assert response.json()["setup"]["kind"] == "classification"


def test_settings_from_the_url_query() -> None:
    settings = PlaygroundSettings.from_query(
        {"function": "xor", "layers": "4,3", "seed": "7", "learning_rate": "0.1"}
    )
    assert (settings.function, settings.units(), settings.seed, settings.learning_rate) == (
        "xor",
        [4, 3],
        7,
        0.1,
    )
    with pytest.raises(CnnlabError, match="seed must be an integer"):
        PlaygroundSettings.from_query({"seed": "1.5"})
    with pytest.raises(CnnlabError, match="activation must be one of"):
        PlaygroundSettings.from_query({"activation": "softmax"})


def test_two_playground_sessions_are_independent_and_reset_restores_the_weights(lab: Lab) -> None:
    client = lab.client()
    first = client.post("/api/playground", json={"settings": {"seed": "3"}}).json()["session"]
    second = client.post("/api/playground", json={"settings": {"seed": "3"}}).json()["session"]
    assert first != second
    initial = sse_events(client, f"/api/playground/{first}/events", 1)[0][1]
    for _ in range(3):
        assert client.post(f"/api/playground/{first}/step").status_code == 200
    stepped = sse_events(client, f"/api/playground/{first}/events", 1)[0][1]
    untouched = sse_events(client, f"/api/playground/{second}/events", 1)[0][1]
    assert stepped["epoch"] == 3 and untouched["epoch"] == 0
    assert untouched["region"] == initial["region"]  # same seed, same initial weights
    assert stepped["region"] != initial["region"]
    client.post(f"/api/playground/{first}/reset")
    reset = sse_events(client, f"/api/playground/{first}/events", 1)[0][1]
    assert (
        reset["epoch"] == 0
        and reset["region"] == initial["region"]
        and reset["neurons"] == initial["neurons"]
    )
    assert client.post("/api/playground/nope/run").status_code == 404


def test_the_playground_trains_pushes_updates_saves_a_run_and_exports_code(lab: Lab) -> None:
    client = lab.client()
    session = client.post("/api/playground", json={"settings": {}}).json()["session"]
    assert client.post(f"/api/playground/{session}/run").json()["running"] is True
    accuracy, updates, started = 0.0, 0, time.monotonic()
    with client.stream("GET", f"/api/playground/{session}/events") as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                update = json.loads(line[5:])
                updates += 1
                accuracy = update["test_accuracy"]
                if accuracy > 0.95 and updates >= 5:
                    break
            assert time.monotonic() - started < 60
    assert accuracy > 0.95
    client.post(f"/api/playground/{session}/pause")
    saved = client.post(f"/api/playground/{session}/save").json()["run"]
    run_dir = lab.root / saved
    config = json.loads((run_dir / "config.json").read_text())
    assert config["command"] == "approx" and config["training"]["function"] == "ring-band"
    assert json.loads((run_dir / "metrics.json").read_text())["test_accuracy"] > 0.9
    assert main(["report", str(run_dir)]) == 0
    assert runs.load_run_model(run_dir).count_params() == config_params(config)
    code = client.get(f"/api/playground/{session}/code").text
    ast.parse(code)
    assert 'keras.layers.Dense(16, activation="tanh")' in code and "seed=0" in code
    assert "keras.optimizers.Adam(learning_rate=0.03)" in code


def config_params(config: dict) -> int:
    units = [2] + [
        layer["config"]["units"]
        for layer in config["model"]["layers"]
        if layer["class_name"] == "Dense"
    ]
    return sum((a + 1) * b for a, b in zip(units, units[1:], strict=False))


# ----------------------------------------------------------------------------- runs
def test_a_run_its_confusion_cells_and_inside_its_model(lab: Lab) -> None:
    client = lab.client()
    entries = client.get("/api/entries").json()["entries"]
    assert {(e["kind"], e["path"]) for e in entries} >= {("run", "digits"), ("study", "study-demo")}
    details = client.get("/api/run", params={"path": "digits"}).json()
    matrix = np.array(details["confusion_matrix"])
    assert (
        matrix.shape == (10, 10) and details["image_model"] and len(details["history"]["loss"]) == 3
    )
    conv = next(row for row in details["arithmetic"] if row["name"] == "conv2d")
    assert conv["input"] == [8, 8, 1] and conv["output"] == [8, 8, 32] and conv["padding"] == "same"
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    true, predicted = (int(i) for i in np.unravel_index(errors.argmax(), errors.shape))
    assert matrix[true, predicted] > 0  # the most frequent mistake of a 3-epoch model
    cell = client.get(
        "/api/run/cell", params={"path": "digits", "true": true, "predicted": predicted}
    ).json()
    assert cell["count"] == matrix[true, predicted] and len(cell["images"]) == min(
        cell["count"], 48
    )
    result = client.post(
        "/api/run/explain", params={"path": "digits"}, json={"index": cell["images"][0]["index"]}
    ).json()
    assert result["true"] == str(true) and result["predicted"] == str(predicted)
    assert [layer["name"] for layer in result["layers"]] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
        "max_pooling2d_1",
    ]
    assert result["layers"][0]["shape"] == [8, 8, 32] and result["filters"]["shape"] == [3, 3, 32]
    assert abs(sum(result["probabilities"]) - 1) < 1e-4
    assert len(base64.b64decode(result["saliency"]["values"])) == 64


def test_a_drawn_or_uploaded_image_is_predicted(lab: Lab) -> None:
    client = lab.client()
    drawing = np.zeros((224, 224), dtype=np.uint8)
    drawing[40:190, 100:125] = 255  # a "1"
    result = client.post(
        "/api/run/explain",
        params={"path": "digits"},
        json={"image": png_data_url(drawing), "source": "draw"},
    ).json()
    assert result["predicted"] in [str(k) for k in range(10)] and result["true"] is None
    assert result["input"]["shape"] == [8, 8, 1]
    pixels = np.frombuffer(base64.b64decode(result["input"]["values"]), dtype=np.uint8).reshape(
        8, 8
    )
    assert pixels[:, 3:5].mean() > pixels[:, :2].mean()  # the stroke is centred, light on dark
    paper = 255 - drawing  # a dark digit on white paper is inverted first
    uploaded = client.post(
        "/api/run/explain", params={"path": "digits"}, json={"image": png_data_url(paper)}
    ).json()
    assert uploaded["input"]["shape"] == [8, 8, 1]
    for index, message in (("3", "must be an integer"), (10_000, "out of range")):
        response = client.post("/api/run/explain", params={"path": "digits"}, json={"index": index})
        assert response.status_code == 400 and message in response.json()["error"]
    response = client.post(
        "/api/run/explain", params={"path": "digits"}, json={"image": "data:image/png;base64,AAAA"}
    )
    assert response.status_code == 400 and "not a readable image" in response.json()["error"]


def test_a_drawing_is_centred_by_its_centre_of_mass_as_mnist() -> None:
    from cnnlab.lab.modelview import centre_of_mass_centred

    image = np.zeros((28, 28), dtype=np.float32)
    image[2:6, 20:22] = 1.0  # a stroke in the top right corner
    centred = centre_of_mass_centred(image)
    rows, cols = np.nonzero(centred)
    assert centred.sum() == image.sum()
    assert abs(rows.mean() - 13.5) <= 0.5 and abs(cols.mean() - 13.5) <= 0.5


def test_curves_are_pushed_while_a_run_is_written(lab: Lab) -> None:
    client = lab.client()
    run_dir = lab.root / "growing"
    run_dir.mkdir()
    runs.write_json(run_dir / "config.json", {"dataset": "digits", "training": {"epochs": 5}})
    events = listen(client, "/api/run/events?path=growing", 2)
    first = events.get(timeout=30)
    assert first == ("history", {"history": {}, "status": "training"})
    runs.write_history(
        run_dir / "history.csv", {"loss": [0.9, 0.5], "accuracy": [0.6, 0.8]}, [1.0, 1.0]
    )
    second = events.get(timeout=30)
    assert second[1]["history"]["loss"] == [0.9, 0.5]


def test_the_curves_of_a_run_still_training_come_from_its_checkpoint(tmp_path: Path) -> None:
    from cnnlab import models
    from cnnlab.engine import callbacks
    from cnnlab.lab.workspace import live_history, run_status

    model = models.build_model(models.model_config("seed-dense", (2,), 2), 2, 0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    runs.write_json(tmp_path / "config.json", {"dataset": "points"})
    x, y = (
        np.random.default_rng(0).random((64, 2), dtype=np.float32),
        np.eye(2, dtype=np.float32)[np.arange(64) % 2],
    )
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        validation_split=0.25,
        callbacks=[callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)],
    )  # as `cnnlab train` mid-run
    history = live_history(tmp_path)
    assert (
        history["epoch"] == [1, 2]
        and len(history["loss"]) == 2
        and len(history["val_accuracy"]) == 2
    )
    assert run_status(tmp_path) == "training"


# ----------------------------------------------------------------------------- studies
def test_a_study_and_its_new_trials_are_pushed(lab: Lab) -> None:
    client = lab.client()
    details = client.get("/api/study", params={"path": "study-demo"}).json()
    assert details["axes"] == ["conv2d.filters"] and details["finished"] == 4
    assert [t["test_accuracy"] for t in details["trials"]][:4] == pytest.approx(
        [0.5, 0.6, 0.7, 0.8]
    )
    events = listen(client, "/api/study/events?path=study-demo", 2)
    assert events.get(timeout=30)[1]["finished"] == 4
    from cnnlab.study.store import StudyStore

    with StudyStore(lab.root / "study-demo" / "study.sqlite") as store:
        record_trial(store, 4)
    assert events.get(timeout=30)[1]["finished"] == 5
    assert client.get("/api/study", params={"path": "digits"}).status_code == 404
    damaged = make_study(lab.root, "study-damaged", trials=1)
    connection = sqlite3.connect(damaged / "study.sqlite")
    with connection:
        connection.execute("UPDATE trials SET configuration = '{not json' WHERE key = 't0'")
    connection.close()
    response = client.get("/api/study", params={"path": "study-damaged"})
    assert response.status_code == 400 and "damaged row" in response.json()["error"]


def test_the_exported_code_runs_on_cnnlabs_engine(lab: Lab, tmp_path: Path) -> None:
    client = lab.client()
    session = client.post(
        "/api/playground", json={"settings": {"samples": "400", "layers": "5", "dropout": "0.1"}}
    ).json()["session"]
    program = tmp_path / "playground.py"
    program.write_text(client.get(f"/api/playground/{session}/code").text)
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", "run", str(program)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loss, accuracy = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert 0 < loss < 2 and 0 <= accuracy <= 1


def test_a_port_in_use_or_a_host_that_cannot_be_bound_is_a_clear_error(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    port = lab.base.rsplit(":", 1)[1]
    assert main(["lab", str(tmp_path), "--port", port, "--no-browser"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert (
        main(["lab", str(tmp_path), "--host", "192.0.2.1", "--port", "0", "--no-browser"]) == 2
    )  # TEST-NET-1
    captured = capsys.readouterr()
    assert "warning: the lab listens on 192.0.2.1: other machines can reach it" in captured.out
    assert "cannot listen on 192.0.2.1:0" in captured.err


# ----------------------------------------------------------------------------- stopping
def test_ctrl_c_stops_the_server_cleanly_even_with_a_page_open(tmp_path: Path) -> None:
    server = start_lab(tmp_path / "runs")
    client = server.client()
    session = client.post("/api/playground", json={"settings": {"samples": "300"}}).json()[
        "session"
    ]
    client.post(f"/api/playground/{session}/run")
    opened = threading.Event()

    def watch() -> None:
        try:
            with client.stream("GET", f"/api/playground/{session}/events") as response:
                for _ in response.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass

    threading.Thread(target=watch, daemon=True).start()
    assert opened.wait(30)
    assert server.stop() == 0
    assert (tmp_path / "runs").is_dir()
