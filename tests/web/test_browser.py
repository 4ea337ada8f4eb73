"""The status page in a real browser: Playwright driving Debian's chromium.

- the live loop: the real ``rollsafe monitor --serve`` on the emulator with the example
  backend; the page, loaded while the service is healthy, shows it down without a reload
  within two of its polls once the monitor fires ``ServiceDown`` (BACKEND_FAIL_FILE); the
  service page's chart carries the deploy's marker; the incident page shows the report;
- the overview of ``rollsafe web`` (state only, no monitor) over a synthetic environment
  of several services: every service is listed, in manifest order, with its state in
  words beside an icon; Tab reaches every link and button, the skip link first, with a
  visible focus style; without JavaScript the states are there all the same.

One Chromium per module (per xdist worker); each test has a fresh context. Without
chromium or Playwright the tests skip, saying which; with ``CI`` set they fail.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from rollsafe.state.sqlite import SQLiteStateStore
from rollsafe.web._synthetic import fill_synthetic
from tests.deploy.conftest import SERVICE, Site, site
from tests.monitor._monitor_site import FAST, MonitorProcess, monitored
from tests.web._browser import browser, page

__all__ = ["browser", "page", "site"]

#: a generous bound for the browser to see a change: no timing is asserted with it
WAIT_MS = 60_000
_ROLLSAFE = Path(sys.executable).with_name("rollsafe")
_SERVING = re.compile(r"status page on (http://127\.0\.0\.1:\d+)")


def test_chromium_renders_a_static_page_and_tabs_through_its_links(page: Any) -> None:
    page.set_content(
        "<!doctype html><html lang=en><title>t</title><h1>rollsafe</h1>"
        "<a href='#a'>a</a> <a href='#b'>b</a>"
    )
    assert page.inner_text("h1") == "rollsafe"
    reached = []
    for _ in range(2):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('href')"))
    assert reached == ["#a", "#b"]


_STATE_OF = """el => {
  const words = el.cloneNode(true);
  const icons = words.querySelectorAll('[aria-hidden="true"]');
  icons.forEach((n) => n.remove());
  return [el.dataset.state, words.textContent.trim(), icons.length];
}"""


def _state(page: Any, service: str) -> tuple[str, str, int]:
    """The overview's state cell of ``service``: its data-state, its words (what a screen
    reader says) and how many decorative icons it has."""
    cell = page.locator(f'tr[data-service="{service}"] [data-state]')
    state, words, icons = cell.evaluate(_STATE_OF)
    return state, words, icons


def _wait_state(page: Any, service: str, state: str) -> None:
    """Wait (without reloading) until the overview shows ``service`` in ``state``."""
    # a function, not an expression: the page's Content-Security-Policy forbids eval
    page.wait_for_function(
        """([service, state]) => {
          const cell = document.querySelector(`tr[data-service="${service}"] [data-state]`);
          return cell !== null && cell.dataset.state === state;
        }""",
        arg=[service, state],
        timeout=WAIT_MS,
    )


def _polls(page: Any) -> int:
    return int(page.evaluate("Number(document.body.dataset.polled || 0)"))


def test_a_failing_service_shows_down_without_reload_with_its_deploy_and_incident(
    site: Site, page: Any
) -> None:
    monitored(site, monitor=FAST)
    flag = site.root / "broken"
    site.seed()
    result = site.deploy(extra_env={"BACKEND_FAIL_FILE": str(flag)})
    assert result.exit_code == 0, result.message
    assert result.record is not None
    deploy_id = result.record.id
    with MonitorProcess(site, "--serve", "127.0.0.1:0") as monitor:
        match = _SERVING.search(monitor.wait_for(_SERVING.pattern, stream="stderr"))
        assert match is not None
        url = match.group(1)
        monitor.wait_for("monitoring", stream="stderr")

        # healthy first: the overview lists the service as operational, state by text
        page.goto(url + "/")
        _wait_state(page, SERVICE, "operational")
        assert _state(page, SERVICE) == ("operational", "Operational", 1)
        page.evaluate("window.__loaded_once = true")  # gone if the page reloads
        interval = float(page.evaluate("document.body.dataset.interval"))
        assert interval == 1.0  # FAST's, the manifest's smallest monitor.interval

        # the service breaks: once the monitor has fired, at most two polls later the
        # page says so, in place (no reload, no navigation)
        flag.touch()
        monitor.wait_for("ServiceDown firing")
        fired_at_poll = _polls(page)
        _wait_state(page, SERVICE, "major_outage")
        shown_at_poll = _polls(page)
        assert shown_at_poll - fired_at_poll <= 2, (fired_at_poll, shown_at_poll)
        assert page.evaluate("window.__loaded_once") is True
        assert _state(page, SERVICE) == ("major_outage", "Major outage", 1)
        assert page.get_attribute("#indicator", "data-indicator") in {"major", "critical"}
        pages = [page.content()]

        # the service page: the 24 h chart carries the deploy's marker, with a text
        # alternative for the chart
        page.click(f'tr[data-service="{SERVICE}"] a[href="/services/{SERVICE}"]')
        page.wait_for_url(f"{url}/services/{SERVICE}")
        chart = page.locator('svg[data-chart="service"]').first
        assert chart.get_attribute("data-range") == "24h"
        assert chart.locator("title").count() >= 1
        marker = chart.locator(f'[data-marker="deploy"][data-deploy="{deploy_id}"]')
        assert marker.count() == 1
        pages.append(page.content())

        # the incident: listed, and its page shows `rollsafe why`'s report
        flag.unlink()
        monitor.wait_for("ServiceDown resolved")
        api = httpx.get(f"{url}/api/v1/incidents", timeout=10).json()
        incidents = api["incidents"] if isinstance(api, dict) else api
        assert incidents, json.dumps(api)[:2000]
        page.goto(url + "/incidents")
        link = page.locator("#incidents li[data-incident] a").first
        link.click()
        page.wait_for_url(re.compile(r"/incidents/[^/?]+$"))
        report = page.locator("article#report")
        assert report.locator("h1").count() == 1
        assert SERVICE in report.inner_text()
        assert "ServiceDown" in report.inner_text()
        pages.append(page.content())
        assert monitor.stop() == 0
    # no secret value in any page the browser showed, nor in the monitor's output
    for text in (*pages, monitor.stdout, monitor.stderr):
        for value in site.values:
            assert value not in text


# -- `rollsafe web` over a synthetic environment of several services ------------------

_NAMES = ["web", "api", "auth", "billing", "search", "worker", "mailer", "reports"]
_DOWN, _DEGRADED = ["billing"], ["search"]
_EXPECTED = {
    name: ("major_outage", "Major outage")
    if name in _DOWN
    else ("partial_outage", "Partial outage")
    if name in _DEGRADED
    else ("operational", "Operational")
    for name in _NAMES
}


def _synthetic_site(root: Path) -> Path:
    """A manifest of ``_NAMES`` and its state (``state.db``) as the monitor leaves it after
    30 days: ``billing`` down, ``search`` answering 5xx. Returns the manifest."""
    lines = ["version: 1", "project: shop", "environments:"]
    lines += ["  production: {platform: local, strict: true}", "services:"]
    for name in _NAMES:
        lines += [f"  {name}:", "    health: {path: /health, expect_status: 200, timeout: 2s}"]
    manifest = root / "rollsafe.yaml"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = SQLiteStateStore(root / "state.db")
    try:
        fill_synthetic(store, "production", _NAMES, 30, time.time(), down=_DOWN, degraded=_DEGRADED)
    finally:
        store.close()
    return manifest


# what Tab reaches: each focused element once, until focus comes round again
_FOCUSABLE = """() => Array.from(document.querySelectorAll('a[href], button'))
  .filter((el) => el.offsetParent !== null || el === document.activeElement)
  .map((el) => el.outerHTML)"""


def test_web_overview_lists_every_service_with_its_state_and_tab_reaches_every_link(
    tmp_path: Path, page: Any, browser: Any
) -> None:
    manifest = _synthetic_site(tmp_path)
    argv = [str(_ROLLSAFE), "web", "--env", "production", "-f", str(manifest)]
    argv += ["--state", f"sqlite:{tmp_path / 'state.db'}", "--serve", "127.0.0.1:0"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    ) as web:
        try:
            assert web.stdout is not None
            url = web.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
            page.goto(url)

            # every service, in manifest order, its state in words beside an icon
            rows = page.locator("#services tbody tr[data-service]")
            assert rows.evaluate_all("rs => rs.map((r) => r.dataset.service)") == _NAMES
            for name in _NAMES:
                state, words, icons = _state(page, name)
                assert (state, words) == _EXPECTED[name], name
                assert icons == 1, name
            assert page.get_attribute("#indicator", "data-indicator") in {"major", "critical"}

            # Tab from the top: the skip link first (visible when focused), then every
            # link and button of the page, each once
            expected = page.evaluate(_FOCUSABLE)
            assert any('href="/services/billing"' in el for el in expected)
            reached: list[str] = []
            for _ in range(len(expected) + 5):
                page.keyboard.press("Tab")
                html = page.evaluate("document.activeElement.outerHTML")
                if reached and html == reached[0]:
                    break
                if html not in reached and not html.startswith("<body"):
                    reached.append(html)
            assert 'class="skip"' in reached[0]
            assert sorted(reached) == sorted(expected)
            page.keyboard.press("Shift+Tab")
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in {"", "none"}, "no visible focus style"

            # without JavaScript the states are there all the same (rendered on the server)
            bare = browser.new_context(java_script_enabled=False)
            try:
                plain = bare.new_page()
                plain.goto(url)
                for name in _NAMES:
                    assert _state(plain, name)[:2] == _EXPECTED[name], name
            finally:
                bare.close()
        finally:
            web.send_signal(signal.SIGINT)
            web.wait(timeout=30)
            output = (web.stdout.read() if web.stdout else "") + (
                web.stderr.read() if web.stderr else ""
            )
    assert web.returncode == 0, output
    assert "Traceback" not in output
