"""The interactive report: self-contained, within its size budget, and following the clock in a real browser."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from browser import Browser, chromium
from media_factory import make_media

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.media import probe
from sgdtam_pipe.pipeline.analyze import analyze
from sgdtam_pipe.pipeline.html_report import render_page, report_budget, write_html_report
from sgdtam_pipe.pipeline.media_proxy import EmbeddedMedia, browser_media
from sgdtam_pipe.pipeline.report import score_line

GRID = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"


@pytest.fixture(scope="module")
def grid_result():
    return analyze(GRID)


@pytest.fixture(scope="module")
def grid_report(grid_result, tmp_path_factory) -> Path:
    return write_html_report(grid_result.to_json(), tmp_path_factory.mktemp("report") / "grid.html")


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    if executable is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium; apt-get install -y chromium)")
    with Browser(executable) as b:
        yield b


def state(browser: Browser) -> dict:
    return browser.evaluate("window.sgdtamReport.ready.then(() => window.sgdtamReport.state())")


def test_report_is_self_contained_and_within_budget(grid_result, grid_report) -> None:
    page = grid_report.read_text("utf-8")
    assert grid_report.stat().st_size <= report_budget(grid_result.duration) == 1_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?https?:|@import""", page)
    assert 'data-mime="video/mp4"' in page and "H.264 proxy" in page  # MPEG-1 does not play in a browser


def test_proxy_steps_down_to_fit_and_refuses_what_cannot(tmp_path) -> None:
    info = probe(GRID)
    roomy, tight = browser_media(GRID, info, max_bytes=800_000), browser_media(GRID, info, max_bytes=60_000)
    assert len(tight.data) <= 60_000 < len(roomy.data) and tight.how != roomy.how
    with pytest.raises(UserError, match="budget"):
        browser_media(GRID, info, max_bytes=2_000)
    small = make_media(tmp_path / "small.mp4", seconds=1.0)
    assert browser_media(small, probe(small), max_bytes=1_000_000).how == "original"  # H.264/AAC plays as it is


def test_grid_report_follows_the_clock_in_a_real_browser(browser, grid_result, grid_report, tmp_path) -> None:
    word = grid_result.words[len(grid_result.words) // 2]
    at = round((word.start + word.end) / 2, 3)
    browser.load(f"{grid_report.as_uri()}#t={at}")
    shown = state(browser)
    segment = next(i for i, s in enumerate(grid_result.segments) if s.start <= at < s.end)
    assert shown["word"] == word.text and shown["segment"] == segment
    assert shown["mediaTime"] == pytest.approx(at, abs=0.05)  # the video itself was seeked
    assert f"{grid_result.segments[segment].score.score:+.2f} {grid_result.segments[segment].score.polarity}" \
        in shown["segmentText"]

    overall = grid_result.to_json()["overall"]
    marked = browser.evaluate("[document.getElementById('overall').textContent, "
                              "document.querySelectorAll('#overall .unvalidated').length]")
    assert (f"route {overall['pattern']}" in marked[0]) and marked[1] == (0 if overall["validated"] else 1)
    assert ("UNVALIDATED" in marked[0]) == (not overall["validated"])
    assert score_line(grid_result.overall) in marked[0]   # the CLI summary's numbers, to the last digit

    before = grid_result.segments[0].start / 2  # before anyone speaks
    shown = browser.evaluate(f"window.sgdtamReport.seek({before}).then(() => window.sgdtamReport.state())")
    assert shown["word"] is None and shown["segment"] == -1

    from PIL import Image

    picture = np.asarray(Image.open(io.BytesIO(browser.screenshot())).convert("L"), dtype=float)
    assert picture.shape[0] > 500 and picture.std() > 20  # a page with content, not a blank or one-colour frame


def test_clicking_the_timeline_seeks_the_media(browser, grid_result, grid_report) -> None:
    browser.load(grid_report.as_uri())
    state(browser)
    browser.evaluate("window.scrollTo(0, 0)")
    target = grid_result.duration * 0.75
    box = browser.evaluate("(() => { const r = document.querySelector('#timeline svg').getBoundingClientRect();"
                           " return [r.left, r.top, r.width]; })()")
    x = box[0] + box[2] * (96 + target / grid_result.duration * 894) / 1000  # the page's LEFT and PLOT widths
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": box[1] + 60, "button": "left",
                                                   "clickCount": 1})
    media_time = browser.evaluate("new Promise(r => setTimeout(() => r(document.querySelector('video').currentTime),"
                                  " 500))")
    assert media_time == pytest.approx(target, abs=0.05)


def test_audio_only_clip_gets_a_waveform(browser, tmp_path) -> None:
    voice = make_media(tmp_path / "tone.wav", seconds=1.5)
    report = write_html_report(analyze(voice).to_json(), tmp_path / "tone.html")
    browser.load(f"{report.as_uri()}#t=0.75")
    assert state(browser)["mediaTime"] == pytest.approx(0.75, abs=0.05)
    assert browser.evaluate("[!!document.querySelector('#media audio'), "
                            "!!document.querySelector('#media canvas')]") == [True, True]


def test_still_image_is_shown_as_a_picture(browser, grid_result, tmp_path) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, format="PNG")
    page = tmp_path / "still.html"
    picture = EmbeddedMedia("image", "image/png", buffer.getvalue(), "original")
    page.write_text(render_page(grid_result.to_json(), picture, None))
    browser.load(f"{page.as_uri()}#t=1")
    assert state(browser)["mediaTime"] is None
    assert browser.evaluate("new Promise(r => { const i = document.querySelector('#media img');"
                            " i.decode().then(() => r(i.naturalWidth)); })") == 64
