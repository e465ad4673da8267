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

from bertdistill.report.formats import leaderboard_order, ms
from bertdistill.serve.schemas import MAX_TEXT_CHARS

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


def chart_label_boxes(page: Page) -> list[dict]:
    """The on-screen box of every label of the chart: each numbered badge, and each text outside a badge (tick
    labels, axis titles, legend names and numbers, the colour key)."""
    return page.locator("#chart svg").evaluate("""svg => {
        const box = (node, what) => { const r = node.getBoundingClientRect();
            return {what, left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
        return [...[...svg.querySelectorAll("g.badge rect")].map((rect) => box(rect, "badge " +
                    rect.parentNode.textContent)),
                ...[...svg.querySelectorAll("text")].filter((text) => !text.closest("g.badge"))
                    .map((text) => box(text, text.textContent))];
    }""")


def overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    return [(a["what"], b["what"]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]]


def check_chart(page: Page, models: list[str]) -> None:
    """Laid out for the width it is shown at (so text keeps its size), every model numbered, no labels overlapping."""
    chart = page.locator("#chart svg")
    expect(chart).to_be_visible()
    shown = page.locator("#chart").evaluate("box => box.clientWidth")
    expect(page.locator("#chart")).to_have_attribute("data-width", str(max(240, shown)))
    assert chart.evaluate("svg => svg.getBoundingClientRect().width / svg.viewBox.baseVal.width") >= 0.99
    assert chart.locator("g.point").count() == chart.locator("g.entry").count() == len(models)
    boxes = chart_label_boxes(page)
    assert len(boxes) > 2 * len(models)
    assert overlapping(boxes) == []
    legend_text = chart.locator("g.entry text").first.evaluate("t => t.getBoundingClientRect().height")
    assert legend_text >= 12  # readable: 12 px type, not a scaled-down picture


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
        expect(row.locator(".stat-js dd")).to_have_text(re.compile(r"^[01]\.\d{3}$"))
        expect(row.locator(".stat-speedup dd")).to_have_text(re.compile(r"^\d+(\.\d+)?×$"))
        expect(row.locator(".bar")).to_have_count(2)
        for value in row.locator(".bar-value").all_text_contents():  # 99.97% is not rounded to 100%
            assert re.fullmatch(r"0%|100%|<0\.01%|>99\.99%|\d{1,2}\.\d\d%", value), value
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
    page.set_viewport_size(LAPTOP)
    page.goto("/")
    chip = page.locator(".chip").first
    expect(chip).to_be_visible()
    chip.click()
    expect(page.locator(".model-row")).to_have_count(len(models))
    assert page.input_value("#text") == chip.get_attribute("title")
    expect(page.locator("#leaderboard tbody tr")).to_have_count(len(leaderboard))
    expect(page.locator("#leaderboard tbody tr").first).to_have_attribute("data-model", "teacher")
    check_chart(page, [e["name"] for e in leaderboard])
    assert console_errors == []


def test_each_row_shows_this_requests_time_and_the_leaderboards_p50(page: Page, live_server_url,
                                                                     offensive_run_dir, console_errors):
    """One request's time is noisy: every row also shows the model's p50 and speed-up from the leaderboard,
    written as the report writes them."""
    entries = {e["name"]: e for e in json.loads((offensive_run_dir / "leaderboard.json").read_text())}
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.fill("#text", "that referee should be ashamed of himself")
    page.click("#submit")
    expect(page.locator(".model-row")).to_have_count(len(served_models(live_server_url)))
    for name in served_models(live_server_url):
        row = page.locator(f'.model-row[data-model="{name}"]')
        expect(row.locator(".stat-p50 dd")).to_have_text(f"{ms(entries[name]['latency_ms']['p50'])} ms")
        speedup = row.locator(".stat-speedup dd").text_content()
        assert float(speedup.rstrip("×")) == pytest.approx(entries[name]["speedup_vs_teacher"], rel=0.01)
    assert console_errors == []


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_leaderboard_column_is_reachable_and_the_chart_labels_never_overlap(
        page: Page, live_server_url, offensive_run_dir, console_errors, viewport):
    entries = json.loads((offensive_run_dir / "leaderboard.json").read_text())
    page.set_viewport_size(viewport)
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    check_chart(page, [e["name"] for e in entries])
    wrap, headings = page.locator("#board-wrap"), page.locator("#leaderboard th")
    expect(headings).to_have_count(9)  # no column is dropped on small screens
    last = page.locator("#leaderboard tbody tr").first.locator("td").last

    def fully_shown(cell) -> bool:
        return cell.evaluate("""(cell, wrap) => { const c = cell.getBoundingClientRect(),
            w = wrap.getBoundingClientRect(); return c.width > 0 && c.left >= w.left - 1 && c.right <= w.right + 1;
        }""", wrap.element_handle())

    if viewport is PHONE:  # the table is wider than the phone: a visible cue, then scrolling shows the rest
        assert not fully_shown(last)
        expect(page.locator("#board-hint")).to_be_visible()
        expect(page.locator("#board-frame")).to_have_class(re.compile(r"\bmore-right\b"))
        screenshot(page, "serve-board-phone.png")
        for heading in headings.all()[1:]:
            heading.evaluate("(th, wrap) => { wrap.scrollLeft = th.offsetLeft + th.offsetWidth - wrap.clientWidth; }",
                             wrap.element_handle())
            assert fully_shown(heading), heading.text_content()
        expect(page.locator("#board-frame")).not_to_have_class(re.compile(r"\bmore-right\b"))
        assert fully_shown(page.locator("#leaderboard th").first)  # the model column stays in view
        screenshot(page, "serve-board-phone-scrolled.png")
    else:
        assert fully_shown(last)
        expect(page.locator("#board-hint")).to_be_hidden()
    second = leaderboard_order(entries, "macro_f1")[1]["name"]
    page.locator("#chart g.entry").nth(1).hover()  # a legend entry lights up its dot
    expect(page.locator("#chart g.point.hot")).to_have_attribute("data-model", second)
    device = "phone" if viewport is PHONE else "laptop"
    page.locator("#chart").screenshot(path=str(ARTIFACTS / f"serve-chart-{device}.png"))
    assert no_horizontal_overflow(page)
    assert console_errors == []


def test_errors_are_shown_not_thrown(page: Page, live_server_url, console_errors):
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.fill("#text", "   ")
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("empty")
    page.fill("#text", "now a normal text")
    page.click("#submit")
    expect(page.locator(".model-row")).to_have_count(len(served_models(live_server_url)))
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#cut-notice")).to_be_hidden()
    assert console_errors == []


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_long_paste_is_cut_with_a_visible_notice(page: Page, live_server_url, console_errors, viewport):
    text = ("a long pasted article about the match, " * 200)[:MAX_TEXT_CHARS + 1_000]
    page.set_viewport_size(viewport)
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.fill("#text", text)  # the whole paste stays in the box: nothing is cut silently
    assert len(page.input_value("#text")) == len(text)
    expect(page.locator("#char-count")).to_have_text("6,000 characters: only the first 5,000 will be compared")
    page.click("#submit")
    expect(page.locator(".model-row")).to_have_count(len(served_models(live_server_url)))
    notice = page.locator("#cut-notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_text("Your text has 6,000 characters: every model read only its first 5,000.")
    assert notice.evaluate("n => n.getBoundingClientRect().top < document.querySelector('.model-row')"
                           ".getBoundingClientRect().top")  # above the results it is about
    screenshot(page, f"serve-cut-{'phone' if viewport is PHONE else 'laptop'}.png")
    assert console_errors == []


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
        for name in models:
            expect(page.locator(f'.model-row[data-model="{name}"] .stat-p50 dd')).to_have_text("–")
            expect(page.locator(f'.model-row[data-model="{name}"] .stat-js dd')).to_have_text(
                re.compile(r"^[01]\.\d{3}$"))
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
