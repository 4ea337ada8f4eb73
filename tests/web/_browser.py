"""A real browser for the status page's tests: Playwright driving Debian's ``chromium``.

Playwright's own browser download cannot work here, so it launches ``/usr/bin/chromium``
(``.ci/run`` installs it). Without chromium or Playwright the browser tests skip, naming
what is missing, except in CI (``CI`` set), where they fail: a green CI run must have
driven a browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("ROLLSAFE_CHROMIUM", "/usr/bin/chromium"))


def chromium_args() -> list[str]:
    """Chromium's flags: no sandbox as root (it refuses to start otherwise), a fixed
    language and no first-run noise."""
    args = ["--no-first-run", "--no-default-browser-check", "--lang=en-US"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


def _missing() -> str | None:
    """Why no browser can be driven here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        return (
            f"no chromium at {CHROMIUM}"
            + (f" (there is {found})" if found else "")
            + (": apt-get install chromium")
        )
    return None


def require_browser() -> None:
    """Skip (or, in CI, fail) when no browser can be driven."""
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (a launch costs about a second)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args()
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context: no cookies or storage from another test), in UTC
    English so texts and times are predictable."""
    context = browser.new_context(locale="en-US", timezone_id="UTC")
    try:
        yield context.new_page()
    finally:
        context.close()
