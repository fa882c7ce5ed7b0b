"""The report as a person sees it: headless Chromium opens the file, shows every chart, logs no error.

Chromium is driven through chromedriver's W3C HTTP interface with plain urllib (no client package), with
`goog:loggingPrefs` to read the console. A full-page screenshot is kept as <pytest tmp>/report.png and
/tmp/meterflow-artifacts/report.png (and report_vi.png). Without Chromium the tests skip, or fail when
METERFLOW_REQUIRE_BROWSER is set, as .ci/run sets it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.report import write_report
from etl.settings import Settings

ARTIFACTS = Path("/tmp/meterflow-artifacts")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
]


def _browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _install_browser() -> str:
    """Install Debian's chromium and chromium-driver; the reason it could not, or ''."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available to install chromium"
    if os.geteuid() != 0:
        return "chromium is missing and installing it needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt, "update"], [apt, "install", "-y", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} timed out"
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
    return ""


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    paths = _browser_paths()
    if paths is None:
        reason = _install_browser()
        paths = _browser_paths()
        if paths is None:
            message = f"headless Chromium is not available: {reason or 'installed, but not found on PATH'}"
            if os.environ.get("METERFLOW_REQUIRE_BROWSER"):
                pytest.fail(message)  # CI (.ci/run) installs it: a skip there would hide the test
            pytest.skip(message)
    return paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Driver:
    """The few W3C WebDriver calls the test needs, over chromedriver's HTTP interface."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.read().decode(errors='replace')}") from exc

    def session_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def script(self, source: str) -> Any:
        return self.session_call("POST", "/execute/sync", {"script": source, "args": []})

    def console(self) -> list[dict[str, Any]]:
        """Console entries logged since the last call."""
        return self.session_call("POST", "/se/log", {"type": "browser"})


@pytest.fixture(scope="module")
def driver(browser: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    chromium, chromedriver = browser
    port = _free_port()
    proc = subprocess.Popen(
        [chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    d = Driver(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if d.call("GET", "/status").get("ready"):
                    break
            except (OSError, AssertionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("chromedriver did not become ready in 30 s")
            time.sleep(0.2)
        profile = tmp_path_factory.mktemp("chromium-profile")
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        d.session = d.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        yield d
        d.call("DELETE", f"/session/{d.session}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def report_settings(fixture_marts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("browser-home")
    (home / "warehouse").mkdir()
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", home / "warehouse" / "marts.duckdb")
    return Settings(home=home, threads=1, memory_limit="512MB")


CHART_SIZES = """
return Array.from(document.querySelectorAll('svg.chart')).map(function (svg) {
    var box = svg.getBoundingClientRect();
    var style = getComputedStyle(svg);
    return {id: svg.id, width: box.width, height: box.height,
            shapes: svg.querySelectorAll('path, use, rect').length,
            visible: style.visibility === 'visible' && style.display !== 'none'};
});
"""


def _screenshot(d: Driver, dest: Path) -> None:
    """A full-page PNG (Chromium's DevTools call through chromedriver), saved to `dest` and ARTIFACTS."""
    shot = d.session_call(
        "POST",
        "/goog/cdp/execute",
        {"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": True}},
    )
    dest.write_bytes(base64.b64decode(shot["data"]))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(dest, ARTIFACTS / dest.name)


@pytest.mark.parametrize(("locale", "png"), [("en", "report.png"), ("vi", "report_vi.png")])
def test_report_shows_every_chart_without_console_errors(
    driver: Driver, report_settings: Settings, tmp_path: Path, locale: str, png: str
) -> None:
    page = write_report(report_settings, "2025-09", locale=locale, out=tmp_path / f"report_{locale}.html")
    driver.console()  # drop what earlier pages logged
    driver.session_call("POST", "/url", {"url": page.as_uri()})
    assert driver.script("return document.readyState") == "complete"
    charts = driver.script(CHART_SIZES)
    assert [c["id"] for c in charts] == [
        "chart-kwh",
        "chart-price",
        "chart-loss",
        "chart-cashless",
        "chart-requests",
        "chart-inspections",
    ]
    for chart in charts:
        assert chart["visible"], chart
        assert chart["width"] > 300 and chart["height"] > 120, chart
        assert chart["shapes"] > 20, chart
    title = driver.script("return document.querySelector('h1').textContent")
    assert title.endswith("2025-09")
    errors = [e for e in driver.console() if e.get("level") == "SEVERE"]
    assert errors == []
    _screenshot(driver, tmp_path / png)
    assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ARTIFACTS / png).stat().st_size > 20_000


def test_console_errors_are_seen(driver: Driver, tmp_path: Path) -> None:
    """The console channel works: an error the page logs is reported (so an empty list above means none)."""
    page = tmp_path / "probe.html"
    page.write_text("<!DOCTYPE html><title>probe</title><p>probe</p>", encoding="utf-8")
    driver.session_call("POST", "/url", {"url": page.as_uri()})
    driver.script("console.error('meterflow-probe')")
    messages = [e["message"] for e in driver.console() if e.get("level") == "SEVERE"]
    assert any("meterflow-probe" in m for m in messages), messages


# --- GX Data Docs on a closed network ---------------------------------------------------------------


def _network(d: Driver, offline: bool) -> None:
    """Chromium's own network switch (DevTools): with it off, nothing outside the file system loads."""
    d.session_call("POST", "/goog/cdp/execute", {"cmd": "Network.enable", "params": {}})
    conditions = {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    d.session_call(
        "POST", "/goog/cdp/execute", {"cmd": "Network.emulateNetworkConditions", "params": conditions}
    )


def _data_docs(home: Path, localize: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data Docs of the raw check of two readings, one of them negative (a failed check to show)."""
    from etl.errors import QualityError
    from etl.quality import check, datadocs
    from tests.test_quality import RUN, Lake, interval

    if not localize:
        monkeypatch.setattr(datadocs, "use_local_assets", lambda site: 0)
    lake = Lake(home)
    lake.ingest(
        "interval_reads",
        [interval("M1", "2025-09-01 00:00", "1.5"), interval("M1", "2025-09-01 00:30", "-1")],
    )
    with pytest.raises(QualityError, match="recorded kWh is not negative"):
        check(lake.settings, RUN, "raw", periods=["2025-09"])
    return datadocs.docs_dir(lake.settings, "raw")


DOCS_STATE = """
var table = document.querySelector('table[data-toggle="table"]') || document.querySelector('table');
var rows = table ? Array.from(table.querySelectorAll('tbody tr')) : [];
var navbar = document.querySelector('.navbar');
return {
    jquery: typeof window.jQuery === 'function',
    bootstrapTable: !!(window.jQuery && window.jQuery.fn.bootstrapTable),
    rows: rows.length,
    rowText: rows.map(function (r) { return r.textContent.replace(/\\s+/g, ' ').trim(); }),
    navbarDisplay: navbar ? getComputedStyle(navbar).display : null,
    bodyFont: getComputedStyle(document.body).fontFamily,
    failedIcons: document.querySelectorAll('.fa-times').length,
    iconGlyph: (function () {
        var icon = document.querySelector('.fa-check-circle, .fa-times');
        return icon ? getComputedStyle(icon, '::before').content : null;
    })()
};
"""


def _open_offline(d: Driver, page: Path) -> dict[str, Any]:
    _network(d, offline=True)
    try:
        d.console()
        d.session_call("POST", "/url", {"url": page.as_uri()})
        assert d.script("return document.readyState") == "complete"
        time.sleep(0.5)  # bootstrap-table fills the list after load
        state = d.script(DOCS_STATE)
        state["errors"] = [e["message"] for e in d.console() if e.get("level") == "SEVERE"]
        return state
    finally:
        _network(d, offline=False)


def test_data_docs_show_styles_and_results_offline(
    driver: Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _data_docs(tmp_path / "home", localize=True, monkeypatch=monkeypatch)
    index = _open_offline(driver, site / "index.html")
    assert index["errors"] == []
    assert index["jquery"] and index["bootstrapTable"]
    # one row per validation of the check: the files' accounting, repeated keys and the readings' suite
    assert index["rows"] >= 3, index
    assert any("interval_reads" in text for text in index["rowText"]), index["rowText"]
    assert index["navbarDisplay"] == "flex"  # Bootstrap 4's .navbar; unstyled it is "block"
    _screenshot(driver, tmp_path / "data_docs.png")

    (page,) = [p for p in site.glob("validations/raw/interval_reads/**/*.html")]
    result = _open_offline(driver, page)
    assert result["errors"] == []
    assert result["navbarDisplay"] == "flex"
    assert result["failedIcons"] >= 1  # the negative reading's failed check
    assert result["iconGlyph"] in ('"✔"', '"✖"')
    _screenshot(driver, tmp_path / "data_docs_result.png")
    assert (ARTIFACTS / "data_docs.png").stat().st_size > 20_000


def test_data_docs_as_gx_writes_them_are_broken_offline(
    driver: Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: GX's own pages, with the network off, load no script, no style and list nothing."""
    site = _data_docs(tmp_path / "home", localize=False, monkeypatch=monkeypatch)
    index = _open_offline(driver, site / "index.html")
    assert not index["jquery"]
    assert index["navbarDisplay"] == "block"
    assert any("ERR_INTERNET_DISCONNECTED" in m for m in index["errors"]), index["errors"]


LINES_OF = """
return Array.from(document.querySelectorAll(arguments[0])).map(function (cell) {
    var range = document.createRange();
    range.selectNodeContents(cell);
    var tops = new Set(Array.from(range.getClientRects()).map(function (r) { return Math.round(r.top); }));
    return [cell.textContent.trim(), tops.size];
});
"""


@pytest.mark.parametrize("width", [1280, 480])
def test_ids_names_and_the_company_label_stay_on_one_line(
    driver: Driver, report_settings: Settings, tmp_path: Path, width: int
) -> None:
    """In the Vietnamese report, whose labels are longest: a node id, a region's name and the company
    row's label never wrap (a narrow window scrolls the table sideways instead)."""
    page = write_report(report_settings, "2025-09", locale="vi", out=tmp_path / "report_vi.html")
    driver.session_call("POST", "/window/rect", {"width": width, "height": 1600})
    try:
        driver.session_call("POST", "/url", {"url": page.as_uri()})
        cells = driver.session_call(
            "POST",
            "/execute/sync",
            {"script": LINES_OF, "args": ["td.id, td.name, tr.total td:first-child"]},
        )
    finally:
        driver.session_call("POST", "/window/rect", {"width": 1280, "height": 1600})
    texts = [text for text, _lines in cells]
    assert "F1" in texts and "DT24" in texts and "Toàn công ty" in texts
    assert [(text, lines) for text, lines in cells if lines != 1] == []


def test_report_sections_in_both_languages(driver: Driver, report_settings: Settings, tmp_path: Path) -> None:
    headings = (
        "return Array.from(document.querySelectorAll('h2, h3')).map(function (h) { return h.textContent; })"
    )
    seen = {}
    for locale in ("en", "vi"):
        page = write_report(report_settings, "2025-09", locale=locale, out=tmp_path / f"r_{locale}.html")
        driver.session_call("POST", "/url", {"url": page.as_uri()})
        seen[locale] = driver.script(headings)
    assert "Feeders" in seen["en"] and "Distribution transformers" in seen["en"]
    assert "Appendix: checks that did not pass" in seen["en"]
    assert "Xuất tuyến" in seen["vi"] and "Trạm biến áp phân phối" in seen["vi"]
    assert "Phụ lục: các phép kiểm tra không đạt" in seen["vi"]
    assert seen["en"].index("Data quality the figures stand on") < seen["en"].index(
        "Appendix: checks that did not pass"
    )
