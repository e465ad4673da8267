"""The page in a real browser: Debian's headless Chromium driven by Playwright, against `bertdistill serve` on a
free loopback port. Screenshots at laptop and phone widths are saved to test-artifacts/ (git-ignored)."""
from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
LAPTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}

# In CI (CI=true) a missing browser is a failure, not a skip: .ci/run installs it.
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="needs Debian's chromium: apt-get install -y --no-install-recommends chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's browser, pointed at the system Chromium (Playwright cannot download one here)."""
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM),
            "args": ["--disable-gpu", "--disable-sync", "--disable-quic"]}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(run_dir: Path):
    """`bertdistill serve RUN_DIR` in a subprocess on a free port; yields its URL once /api/health answers."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "bertdistill.cli", "serve", str(run_dir), "--port", str(port),
                                "--no-access-log"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {process.stdout.read().decode(errors='replace')}")
            try:
                urllib.request.urlopen(f"{url}/api/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="session")
def live_server_url(offensive_run_dir):
    with live_server(offensive_run_dir) as url:
        yield url


@pytest.fixture(scope="session")
def base_url(live_server_url):
    return live_server_url


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logs (script errors, CSP violations, failed loads); a test ends by asserting there are none."""
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def served_models(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/models", timeout=30) as response:
        return [model["name"] for model in json.load(response)["models"]]


def bar_widths(page: Page, selector: str) -> list[float]:
    """Widths of the bars' fills, in percent of their track, as the page set them."""
    return page.locator(selector).evaluate_all("els => els.map(e => parseFloat(e.style.width))")


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def no_horizontal_overflow(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_type_a_text_compare_every_model_and_soften_the_teacher(page: Page, live_server_url, console_errors):
    text = "@user you are a complete idiot, get lost"
    models = served_models(live_server_url)
    page.set_viewport_size(LAPTOP)
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.fill("#text", text)
    page.click("#submit")
    rows = page.locator(".model-row")
    expect(rows).to_have_count(len(models))
    for name in models:
        row = page.locator(f'.model-row[data-model="{name}"]')
        expect(row.locator(".label-pill")).to_have_text(re.compile(r"^(not-offensive|offensive)$"))
        expect(row.locator(".stat-time dd")).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
        expect(row.locator(".stat-cosine dd")).to_have_text(re.compile(r"^[01]\.\d{3}$"))
        expect(row.locator(".stat-speedup dd")).to_have_text(re.compile(r"^\d+(\.\d)?×$"))
        expect(row.locator(".bar")).to_have_count(2)
    expect(page.locator(".model-row").first).to_have_attribute("data-model", "teacher")

    # The temperature slider: at T = 1 the softened bars are the teacher's probabilities; at the far end they are
    # softmax(logits / T), computed here from the API's logits.
    expect(page.locator("#t-value")).to_have_text("T = 1.0")
    at_one = bar_widths(page, "#softened .fill")
    page.locator("#temperature").focus()
    page.keyboard.press("End")
    expect(page.locator("#t-value")).to_have_text("T = 20.1")
    softened = bar_widths(page, "#softened .fill")
    assert softened != at_one
    logits = post_json(f"{live_server_url}/api/predict", {"text": text, "models": ["teacher"]})[
        "results"][0]["predictions"][0]["logits"]
    exps = [math.exp(z / 2 ** 4.33) for z in logits]
    assert softened == pytest.approx([100 * e / sum(exps) for e in exps], abs=0.05)
    assert abs(softened[0] - 50) < abs(at_one[0] - 50)  # a higher temperature flattens the distribution
    screenshot(page, "serve-laptop.png")

    page.set_viewport_size(PHONE)
    expect(rows).to_have_count(len(models))
    assert no_horizontal_overflow(page)
    screenshot(page, "serve-phone.png")
    assert console_errors == []


def test_examples_leaderboard_and_plot(page: Page, live_server_url, offensive_run_dir, console_errors):
    models = served_models(live_server_url)
    leaderboard = json.loads((offensive_run_dir / "leaderboard.json").read_text())
    page.goto("/")
    chip = page.locator(".chip").first
    expect(chip).to_be_visible()
    chip.click()
    expect(page.locator(".model-row")).to_have_count(len(models))
    assert page.input_value("#text") == chip.get_attribute("title")
    expect(page.locator("#leaderboard tbody tr")).to_have_count(len(leaderboard))
    expect(page.locator("#leaderboard tbody tr").first).to_have_attribute("data-model", "teacher")
    expect(page.locator("#plot")).to_be_visible()
    assert page.locator("#plot").evaluate("img => img.complete && img.naturalWidth > 0")
    assert console_errors == []


def test_errors_are_shown_not_thrown(page: Page, live_server_url, console_errors):
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.fill("#text", "   ")
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("empty")
    page.locator("#text").evaluate("(box) => { box.value = 'a'.repeat(5001); }")  # past the box's maxlength
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("at most 5000 characters")
    expect(page.locator(".model-row")).to_have_count(0)
    page.fill("#text", "now a normal text")
    page.click("#submit")
    expect(page.locator(".model-row")).to_have_count(len(served_models(live_server_url)))
    expect(page.locator("#error")).to_be_hidden()
    assert [e for e in console_errors if "422" not in e] == []  # the browser logs the refused request itself


def test_multilabel_page_shows_per_label_probabilities(page: Page, jigsaw_run_dir, console_errors):
    with live_server(jigsaw_run_dir) as url:
        models = served_models(url)
        page.set_viewport_size(LAPTOP)
        page.goto(url)
        expect(page.locator("#examples .chip").first).to_be_visible()
        page.fill("#text", "you stupid idiot, I will find you and hurt you")
        page.click("#submit")
        rows = page.locator(".model-row")
        expect(rows).to_have_count(len(models))
        labels = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
        for name in models:
            bars = page.locator(f'.model-row[data-model="{name}"] .bar')
            expect(bars).to_have_count(6)
            assert bars.evaluate_all("els => els.map(e => e.dataset.label)") == labels
        ticks = page.locator(".model-row .tick")
        expect(ticks).to_have_count(len(models) * 6)  # not evaluated yet: every threshold is 0.5
        assert set(ticks.evaluate_all("els => els.map(e => e.style.left)")) == {"50%"}
        expect(page.locator("#leaderboard caption")).to_contain_text("no leaderboard yet")
        expect(page.locator("#plot-card")).to_be_hidden()
        expect(page.locator("#results-note")).to_contain_text("Per-label probabilities")
        at_one = bar_widths(page, "#softened .fill")
        page.locator("#temperature").focus()
        page.keyboard.press("End")
        assert bar_widths(page, "#softened .fill") != at_one
        screenshot(page, "serve-multilabel-laptop.png")
        page.set_viewport_size(PHONE)
        assert no_horizontal_overflow(page)
        screenshot(page, "serve-multilabel-phone.png")
    assert console_errors == []
