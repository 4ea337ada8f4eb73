"""The status page's screenshots in docs/img/: the overview, a service page and an
incident page, taken in Chromium (Debian's, through Playwright).

The environment is small and made up but recorded as the monitor and the deploys record
it (``fill_synthetic``): eight services of a shop over 30 days; ``billing`` rolled back by
the monitor yesterday, then down since ten minutes ago (every probe a 503) right after a
forced deploy; ``search`` answering 5xx after a deploy whose checks were skipped; ``api``
rolled back four days ago. The incident's report is ``rollsafe why``'s, built by the page
from that state and an in-memory Cloud Run (no logs to read here: the report says so).
Served by the real ``StatusApp`` on 127.0.0.1, read in UTC in a 1280-pixel-wide window,
light theme.

Run: ``.venv/bin/python benchmarks/screenshots.py [--out docs/img]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _chromium import chromium  # noqa: E402
from _status_env import serving, synthetic_env  # noqa: E402
from rollsafe.deploy.plan import ANNOTATION_DEPLOY_ID  # noqa: E402
from rollsafe.incidents.collect import EvidenceCollector  # noqa: E402
from rollsafe.incidents.report import build_report  # noqa: E402
from rollsafe.incidents.window import episode_window  # noqa: E402
from rollsafe.monitor.samples import probes_namespace  # noqa: E402
from rollsafe.platforms.base import RevisionSpec  # noqa: E402
from rollsafe.platforms.memory import InMemoryPlatform  # noqa: E402
from rollsafe.state.records import DeployRecord  # noqa: E402
from rollsafe.stores.memory import InMemorySecretStore  # noqa: E402
from rollsafe.web.app import StatusApp  # noqa: E402
from rollsafe.web.data import StatusData  # noqa: E402

NAMES = ["web", "api", "auth", "billing", "search", "worker", "mailer", "reports"]
DOWN, DEGRADED = ["billing"], ["search"]
HOUR, DAY = 3600, 86400
WIDTH = 1280


def _deploys(env: str, now: float) -> list[DeployRecord]:
    """This week's deploys, as the journal holds them: each service's serving revision
    (``fill_synthetic``'s ``NAME-00001-syn``) deployed by someone; ``api`` rolled back by
    the monitor four days ago; ``search`` deployed with its checks skipped (and why);
    ``billing`` rolled back yesterday, then forced out eleven minutes ago, just before it
    went down."""
    made = []

    def record(service: str, ago: float, user: str, **kw: Any) -> None:
        started = now - ago
        kw.setdefault("checks", "passed")
        kw.setdefault("outcome", "succeeded")
        kw.setdefault("revision", f"{service}-00001-syn")
        made.append(
            DeployRecord(
                id=f"d-{time.strftime('%Y%m%d', time.gmtime(started))}-{len(made) + 17:05d}",
                env=env,
                service=service,
                user=user,
                host="ci-runner-3",
                pid=4242,
                stage="done",
                started=started,
                finished=started + 95,
                exit_code=0,
                git_commit="9c1e5f2",
                **kw,
            )
        )

    record("api", 4 * DAY + 20 * 60, "maria", revision="api-00040-bad", outcome="rolled-back")
    record("api", 4 * DAY, "rollsafe-monitor", checks="rollback", revision="api-00001-syn")
    for i, name in enumerate(("web", "auth", "worker", "mailer", "reports")):
        record(name, (i + 1) * 19 * HOUR, ("li", "samir", "maria", "jo", "li")[i])
    reason = "index rebuild, approved in CHG-2291"
    record("search", 20 * HOUR, "samir", checks="skipped", reason=reason)
    # yesterday's bad billing deploy, rolled back by the monitor: the chart's two markers
    record("billing", 18 * HOUR, "jo", revision="billing-00038-bad", outcome="rolled-back")
    record(
        "billing",
        18 * HOUR - 7 * 60,
        "rollsafe-monitor",
        checks="rollback",
        revision="billing-00037",
    )
    reason = "hotfix for invoice rounding"
    record("billing", 11 * 60, "maria", checks="forced", forced=True, reason=reason)
    return made


def _failing_minutes(store: Any, env: str, service: str, now: float) -> None:
    """``service``'s probes of the last ten minutes, every one a 503 (every 30 s)."""
    minute = int(now) // 60 * 60
    for start in range(minute - 600, minute + 60, 60):
        bucket = {
            "service": service,
            "start": start,
            "total": 2,
            "failed": 2,
            "statuses": {"503": 2},
            "latency_sum": 0.02,
            "latency_max": 0.012,
            "first_failed": start + 1.0,
            "last_failed": start + 31.0,
            "seconds": 60,
            "revisions": {f"{service}-00001-syn": [2, 2]},
        }
        store.kv_put(probes_namespace(env), f"{service}/{start}", bucket)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="rollsafe-screenshots-") as tmp:
        env, store = synthetic_env(
            Path(tmp), NAMES, 30, now, down=DOWN, degraded=DEGRADED, raw_hours=24, deploys=False
        )
        try:
            deployed: dict[str, str] = {}
            for deploy in _deploys(env.name, now):
                store.save_record(deploy)
                deployed[deploy.service] = deploy.id
            _failing_minutes(store, env.name, "billing", now)
            platform = InMemoryPlatform()
            for name in NAMES:
                platform.create_revision(
                    RevisionSpec(
                        name,
                        f"{name}-00001-syn",
                        image=f"europe-docker.pkg.dev/shop/app/{name}:2026.12",
                        health_path="/health",
                        annotations={ANNOTATION_DEPLOY_ID: deployed[name]},
                    )
                )

            def report(episode: Any) -> Any:
                collector = EvidenceCollector(
                    env,
                    state=store,
                    platform=platform,
                    logs=None,
                    secrets=InMemorySecretStore(),
                )
                found = collector.collect(list(episode.services), *episode_window(episode, now))
                return build_report(found, episode, now=now)

            app = StatusApp(StatusData(store, env), reports=report)
            with serving(app) as url, chromium() as browser:
                context = browser.new_context(
                    locale="en-US",
                    timezone_id="UTC",
                    color_scheme="light",
                    viewport={"width": WIDTH, "height": 900},
                )
                page = context.new_page()
                shots = []
                page.goto(url)
                shots.append(_shot(page, args.out / "status-overview.png"))
                page.goto(url + "services/billing")
                shots.append(_shot(page, args.out / "status-service.png"))
                page.goto(url + "incidents")
                page.locator('#incidents li[data-incident] a:has-text("billing")').first.click()
                page.wait_for_load_state("load")
                shots.append(_shot(page, args.out / "status-incident.png"))
                context.close()
        finally:
            store.close()
    for path, size in shots:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {size // 1024} KB")
    return 0


def _shot(page: Any, path: Path) -> tuple[Path, int]:
    """The page down to 2,400 pixels (a long page is cut there), as PNG."""
    height = min(2400, int(page.evaluate("document.documentElement.scrollHeight")))
    page.set_viewport_size({"width": WIDTH, "height": max(600, height)})
    page.screenshot(path=str(path), full_page=False)
    page.set_viewport_size({"width": WIDTH, "height": 900})
    return path, path.stat().st_size


if __name__ == "__main__":
    sys.exit(main())
