"""Speed of the lab, measured on the real server: ``python -m cnnlab.lab.measure``.

Prints (and with ``--json PATH`` writes) three figures:

- playground updates per second pushed to a page for the ring-band model (default settings);
- the feature maps of the seed CNN (MNIST shapes, 34,826 parameters) for one drawn image:
  the engine's time and the whole request's, median of ``--repeats``;
- the first page load in Chromium (``/usr/bin/chromium``), when Playwright and Chromium are there.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np


def start(root: Path) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", "lab", str(root), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for line in process.stdout:
        if "?token=" in line:
            base, token = line.split(" at ", 1)[1].strip().split("/?token=")
            return process, base, token
    raise RuntimeError("the lab did not start")


def seed_cnn_run(root: Path) -> str:
    """An (untrained) seed CNN saved as a run: the timing does not depend on the weights."""
    from cnnlab import models, runs

    model = models.build_model(models.model_config("seed-cnn", (28, 28, 1), 10), 10, 0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    run_dir = runs.prepare_run_dir(root / "seed-cnn")
    runs.write_json(run_dir / "config.json", {"dataset": "mnist", "training": {"dataset": "mnist"}})
    model.save(run_dir / runs.MODEL_FILE)
    return "seed-cnn"


def drawn_digit() -> str:
    from PIL import Image

    pixels = np.zeros((224, 224), dtype=np.uint8)
    pixels[40:190, 100:125] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def playground_rate(client: httpx.Client, seconds: float) -> dict[str, float]:
    session = client.post("/api/playground", json={"settings": {}}).json()["session"]
    client.post(f"/api/playground/{session}/run")
    count, accuracy, started = 0, 0.0, None
    with client.stream("GET", f"/api/playground/{session}/events") as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                started = started or time.perf_counter()
                count += 1
                accuracy = json.loads(line[5:])["test_accuracy"]
                if time.perf_counter() - started >= seconds:
                    break
    elapsed = time.perf_counter() - started
    client.post(f"/api/playground/{session}/pause")
    return {"updates_per_second": (count - 1) / elapsed, "test_accuracy_at_end": accuracy}


def feature_map_times(client: httpx.Client, run: str, repeats: int) -> dict[str, float]:
    image, engine, request = drawn_digit(), [], []
    client.post(
        "/api/run/explain", params={"path": run}, json={"image": image, "source": "draw"}
    )  # load the model
    for _ in range(repeats):
        started = time.perf_counter()
        result = client.post(
            "/api/run/explain", params={"path": run}, json={"image": image, "source": "draw"}
        ).json()
        request.append((time.perf_counter() - started) * 1000)
        engine.append(result["milliseconds"])
    return {
        "engine_ms_median": statistics.median(engine),
        "request_ms_median": statistics.median(request),
    }


def first_page_load(base: str, token: str) -> dict[str, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(f"{base}/playground?token={token}")
        loaded = (time.perf_counter() - started) * 1000
        page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
        drawn = (time.perf_counter() - started) * 1000
        timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        browser.close()
    navigation = json.loads(timing)
    return {
        "load_event_ms": navigation["loadEventEnd"],
        "goto_ms": loaded,
        "first_update_drawn_ms": drawn,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="how long to count playground updates"
    )
    parser.add_argument("--repeats", type=int, default=20, help="feature-map requests to time")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "runs"
        run = seed_cnn_run(root)
        process, base, token = start(root)
        try:
            with httpx.Client(
                base_url=base, timeout=60, headers={"X-Cnnlab-Token": token}
            ) as client:
                figures = {
                    "playground": playground_rate(client, args.seconds),
                    "feature_maps_seed_cnn": feature_map_times(client, run, args.repeats),
                    "first_page_load": first_page_load(base, token),
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                }
        finally:
            process.terminate()
            process.wait(timeout=20)
    print(json.dumps(figures, indent=2))
    if args.json:
        from cnnlab.runs import write_json

        write_json(Path(args.json), figures)
    return figures


if __name__ == "__main__":
    main()
