"""Page loads in Chromium for the status page's benchmark and screenshots: Playwright
driving Debian's ``/usr/bin/chromium`` (Playwright's own download cannot work here).

``paint_timings`` loads a URL in a fresh context each time (a cold cache, as a first
visit) and reads the Performance API: first contentful paint (the ``paint`` entry), the
navigation timing's ``responseStart`` (first byte), ``domInteractive`` and
``domContentLoadedEventEnd``, and a time to interactive taken as Lighthouse defines it
when nothing else runs: the later of first contentful paint and DOMContentLoaded, pushed
past the end of the last long task (over 50 ms on the main thread; none is expected).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("ROLLSAFE_CHROMIUM", "/usr/bin/chromium")

# installed before the page's own scripts: long tasks are not buffered for late observers
_LONGTASKS = """
window.__longtasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push(e.startTime + e.duration);
  }).observe({type: 'longtask', buffered: true});
} catch (e) {}
"""

_READ = """
async () => {
  const fcp = await new Promise((resolve) => {
    const seen = performance.getEntriesByName('first-contentful-paint');
    if (seen.length) return resolve(seen[0].startTime);
    new PerformanceObserver((list) => {
      const e = list.getEntriesByName('first-contentful-paint');
      if (e.length) resolve(e[0].startTime);
    }).observe({type: 'paint', buffered: true});
    setTimeout(() => resolve(null), 5000);
  });
  const nav = performance.getEntriesByType('navigation')[0];
  const dcl = nav.domContentLoadedEventEnd;
  const last = Math.max(0, ...window.__longtasks);
  return {
    fcp: fcp,
    ttfb: nav.responseStart,
    interactive: nav.domInteractive,
    dcl: dcl,
    tti: Math.max(fcp || 0, dcl, last),
    load: nav.loadEventEnd,
    transfer: nav.transferSize,
    body: nav.decodedBodySize,
    longtasks: window.__longtasks.length,
  };
}
"""


def launch_args() -> list[str]:
    """Chromium's flags (no sandbox as root: it refuses to start otherwise)."""
    args = ["--no-first-run", "--no-default-browser-check", "--lang=en-US"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (``SystemExit`` with the reason when it cannot start)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("Playwright is missing: pip install -e '.[dev]'") from None
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"no chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=launch_args()
        )
        try:
            yield browser
        finally:
            browser.close()


def load_once(browser: Any, url: str) -> dict[str, Any]:
    """One cold load of ``url``: the Performance API's figures (ms from navigation start)."""
    context = browser.new_context(locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        page.add_init_script(_LONGTASKS)
        page.goto(url, wait_until="load", timeout=120_000)
        figures: dict[str, Any] = page.evaluate(_READ)
        return figures
    finally:
        context.close()


def paint_timings(browser: Any, url: str, loads: int) -> dict[str, float]:
    """The medians of ``loads`` cold loads (after one warm-up load, not counted)."""
    load_once(browser, url)
    runs = [load_once(browser, url) for _ in range(loads)]
    keys = ("fcp", "ttfb", "interactive", "dcl", "tti", "load", "transfer", "body", "longtasks")
    return {
        key: statistics.median(float(r[key]) for r in runs if r[key] is not None)
        for key in keys
        if any(r[key] is not None for r in runs)
    }
