"""`cnnlab lab` in Debian's Chromium, driven by Python Playwright: controls found by their
accessible names.

Every test checks that no request left the server on 127.0.0.1 and that the console had no error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "needs Chromium at /usr/bin/chromium (Debian: apt-get install -y chromium)",
        allow_module_level=True,
    )
try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:
    pytest.skip(
        "needs Python Playwright (pip install playwright; its own browser download is not used)",
        allow_module_level=True,
    )

from test_lab_server import Lab, make_study, record_trial, start_lab, train_digits_run  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab") / "runs"
    train_digits_run(root / "digits")
    make_study(root, trials=4)
    server = start_lab(root)
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def expected_console_errors() -> list[str]:
    """Console errors a test expects (the browser logs every 4xx answer): their text, appended by
    the test."""
    return []


@pytest.fixture
def page(lab: Lab, browser: Browser, expected_console_errors: list[str]) -> Iterator[Page]:
    """A logged-in page at 1280x800; afterwards: every request went to the lab, the console had no
    other error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{lab.base}/?token={lab.token}")
    yield page
    context.close()
    outside = [
        url
        for url in requests
        if not url.startswith(lab.base + "/") and not url.startswith(("data:", "blob:"))
    ]
    assert lab.base.startswith("http://127.0.0.1:")
    assert outside == []
    assert [
        e for e in errors if not any(expected in e for expected in expected_console_errors)
    ] == []


def canvas_picture(page: Page, canvas_id: str) -> str:
    return page.evaluate(f"document.getElementById('{canvas_id}').toDataURL()")


def test_the_home_page_lists_runs_and_studies(page: Page, lab: Lab) -> None:
    assert page.url == lab.base + "/"
    table = page.get_by_role("table", name="Runs and studies")
    table.get_by_role("link", name="digits").wait_for()  # the list arrives after the page
    assert table.get_by_role("link", name="study-demo").is_visible()


def test_the_playground_trains_the_ring_band_past_95_percent_while_region_and_curves_update(
    page: Page, lab: Lab
) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    assert page.get_by_label("Function", exact=True).input_value() == "ring-band"
    before = canvas_picture(page, "pg-region"), canvas_picture(page, "pg-loss")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("Number(document.getElementById('pg-status').dataset.epoch) >= 1")
    during = canvas_picture(page, "pg-region"), canvas_picture(page, "pg-loss")
    epoch = int(page.locator("#pg-status").get_attribute("data-epoch"))
    status = "document.getElementById('pg-status').dataset"
    page.wait_for_function(
        f"Number({status}.testAccuracy) > 0.95 && Number({status}.epoch) >= {epoch + 2}",
        timeout=30_000,
    )
    page.get_by_role("button", name="Pause").click()
    after = canvas_picture(page, "pg-region"), canvas_picture(page, "pg-loss")
    assert before[0] != during[0] != after[0] and before[1] != during[1] != after[1]
    assert "test accuracy" in page.locator("#pg-status").inner_text()
    assert page.get_by_role("img", name="dense neuron 15").is_visible()


def test_save_as_run_and_export_code(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.base}/playground?function=circle&samples=500&layers=4")
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    page.get_by_role("button", name="Step").click()
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '1'")
    page.get_by_role("button", name="Export code").click()
    page.wait_for_function(
        "document.getElementById('pg-code-text').textContent.includes('model.fit')"
    )
    code = page.get_by_label("Exported code", exact=True).inner_text()
    assert 'keras.layers.Dense(4, activation="tanh")' in code and "get_function('circle')" in code
    page.get_by_role("button", name="Save as run").click()
    link = page.get_by_role("status").get_by_role("link")
    link.wait_for()
    name = link.inner_text()
    assert (lab.root / name / "report.html").is_file()
    link.click()
    page.get_by_role("heading", name=f"Run {name}").wait_for()
    page.get_by_role("table", name="Summary").get_by_text("approx").wait_for()


def test_two_pages_each_get_their_own_playground(page: Page, lab: Lab) -> None:
    other = page.context.new_page()
    for each in (page, other):
        each.goto(f"{lab.base}/playground?samples=500")
        each.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("Number(document.getElementById('pg-status').dataset.epoch) >= 3")
    page.get_by_role("button", name="Pause").click()
    assert other.locator("#pg-status").get_attribute("data-epoch") == "0"
    other.get_by_role("button", name="Step").click()
    other.wait_for_function("document.getElementById('pg-status').dataset.epoch === '1'")
    assert int(page.locator("#pg-status").get_attribute("data-epoch")) >= 3


def test_the_whole_state_lives_in_the_url(page: Page, lab: Lab) -> None:
    page.goto(
        f"{lab.base}/playground?function=xor&layers=4,4,4&seed=7&learning_rate=0.1&activation=relu"
    )
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    assert page.get_by_label("Function", exact=True).input_value() == "xor"
    assert page.get_by_label("Hidden layers", exact=True).input_value() == "3"
    assert page.get_by_label("Neurons per layer", exact=True).input_value() == "4"
    assert page.get_by_label("Activation", exact=True).input_value() == "relu"
    initial = canvas_picture(page, "pg-region")
    page.get_by_label("Seed", exact=True).fill("8")
    page.get_by_label("Seed", exact=True).press("Enter")
    page.wait_for_url("**seed=8**")
    assert (
        "function=xor" in page.url
        and "layers=4%2C4%2C4" in page.url
        and "learning_rate=0.1" in page.url
    )
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    page.goto(page.url.replace("seed=8", "seed=7"))  # a shared link: the same initial network
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    assert canvas_picture(page, "pg-region") == initial


def test_a_bad_expression_is_shown_inline_and_a_good_one_runs(
    page: Page, lab: Lab, expected_console_errors: list[str]
) -> None:
    expected_console_errors.append("the server responded with a status of 400 (Bad Request)")
    page.goto(f"{lab.base}/playground")
    page.get_by_label("Function", exact=True).select_option("expression")
    page.get_by_label("Expression in x and y", exact=True).fill("x +* y")
    page.get_by_label("Expression in x and y", exact=True).press("Enter")
    alert = page.get_by_role("alert").filter(has_text="not valid")
    alert.wait_for()
    page.get_by_label("Expression in x and y", exact=True).fill("x**2 + y**2 < 0.5")
    page.get_by_label("Expression in x and y", exact=True).press("Enter")
    alert.wait_for(state="hidden")
    page.wait_for_function("document.getElementById('pg-status').dataset.epoch === '0'")
    assert "function=x" in page.url


def test_a_drawn_digit_gets_a_prediction_and_feature_maps(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.base}/run?path=digits")
    pad = page.get_by_role("img", name="Drawing pad")
    page.locator("#run-pad[data-ready]").wait_for()
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(
            box["x"] + 0.5 * box["width"], box["y"] + (0.15 + 0.07 * step) * box["height"]
        )
    page.mouse.up()
    prediction = page.locator("#run-predicted .prediction")
    prediction.wait_for()
    assert prediction.inner_text() in [str(k) for k in range(10)]
    assert (
        page.get_by_role("list", name="Class probabilities").get_by_role("listitem").count() == 10
    )
    assert page.get_by_role("img", name="conv2d channel 31").is_visible()
    assert page.get_by_role("img", name="max_pooling2d_1 channel 63").count() == 1
    assert page.get_by_role("img", name="conv2d filter 0").is_visible()
    assert page.get_by_role("img", name="Saliency map").is_visible()


def test_an_uploaded_image_gets_a_prediction(page: Page, lab: Lab, tmp_path: Path) -> None:
    from PIL import Image

    paper = np.full((64, 64), 255, dtype=np.uint8)
    paper[10:54, 28:36] = 0  # a dark "1" on white paper
    Image.fromarray(paper).save(tmp_path / "one.png")
    page.goto(f"{lab.base}/run?path=digits")
    page.locator("#run-pad[data-ready]").wait_for()
    page.get_by_label("Upload an image", exact=True).set_input_files(str(tmp_path / "one.png"))
    prediction = page.locator("#run-predicted .prediction")
    prediction.wait_for()
    assert prediction.inner_text() in [str(k) for k in range(10)]
    assert page.get_by_role("img", name="Model input").is_visible()


def test_a_click_on_a_confusion_matrix_cell_shows_those_test_images(page: Page, lab: Lab) -> None:
    from cnnlab import runs
    from cnnlab.datasets import load_dataset, prepare_images

    model = runs.load_run_model(lab.root / "digits")
    data = load_dataset("digits")
    predicted = model.predict(prepare_images(data.x_test), verbose=0).argmax(axis=1)
    truth = np.asarray(data.y_test)
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (truth, predicted), 1)
    np.fill_diagonal(matrix, 0)
    t, p = (int(i) for i in np.unravel_index(matrix.argmax(), matrix.shape))
    expected = np.flatnonzero((truth == t) & (predicted == p))
    assert len(expected) > 0
    page.goto(f"{lab.base}/run?path=digits")
    page.get_by_role("button", name=f"true {t}, predicted {p}: {len(expected)} images").click()
    shown = page.get_by_role("list", name=f"True {t}, predicted {p}")
    shown.wait_for()
    indices = [
        int(item.get_attribute("data-index")) for item in shown.get_by_role("listitem").all()
    ]
    assert indices == expected[:48].tolist()


def test_the_conv_arithmetic_flags_a_kernel_that_cannot_fit(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.base}/run?path=digits")
    table = page.get_by_role("table", name="Conv arithmetic")
    assert table.locator("tr[data-layer=conv2d] .out").inner_text() == "8×8×32"
    page.get_by_label("conv2d padding", exact=True).select_option("valid")
    page.get_by_label("conv2d kernel", exact=True).fill("9")
    row = table.locator("tr[data-layer=conv2d]")
    assert "does not fit" in row.locator(".how").inner_text()
    assert "bad" in row.get_attribute("class")


def test_the_study_table_sorts_and_filters(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.base}/study?path=study-demo")
    table = page.get_by_role("table", name="Trials")
    table.locator("tr[data-key]").first.wait_for()

    def accuracies() -> list[str]:
        column = [th.inner_text().split(" ")[0] for th in table.locator("th").all()].index(
            "test_accuracy"
        )
        return [
            row.locator("td").nth(column).inner_text()
            for row in table.locator("tr[data-key]").all()
        ]

    page.get_by_role("button", name="Sort by test_accuracy").click()
    assert accuracies() == ["0.5000", "0.6000", "0.7000", "0.8000", "–"]
    page.get_by_role("button", name="Sort by test_accuracy").click()
    assert accuracies() == ["0.8000", "0.7000", "0.6000", "0.5000", "–"]
    page.get_by_label("Filter trials", exact=True).fill("done")
    assert len(accuracies()) == 4
    page.get_by_role("button", name="Curves of trial 2").click()
    assert (
        "Trial 2 (conv2d.filters = 32, seed 2): test accuracy 0.7000"
        in page.locator("#study-trial-h").inner_text()
    )
    from cnnlab.study.store import StudyStore

    with StudyStore(
        lab.root / "study-demo" / "study.sqlite"
    ) as store:  # a trial finishes while the page is open
        record_trial(store, 4)
    page.wait_for_function("document.querySelectorAll('#study-table tr[data-key]').length === 5")
    assert accuracies()[0] == "0.9000"  # still sorted by accuracy, descending
