"""The checks every scenario's reports pass, whatever the incident.

- the commands exit 0, the JSON is JSON and validates against docs/why.schema.json;
- every why, factor, action, timeline and went-well item cites >= 1 id, every id exists in
  ``evidence[]``, and every ``log://`` or ``sm://`` source is an entry or version Google holds;
- impact's statuses, counts and first/last bad answers are the request log's (and the
  monitor's probes'), and every 5xx the report writes is one the logs show;
- no secret value in any output; no hindsight words outside quotes;
- the Markdown's sections and typed action items, the HTML page, the listing, the default
  episode.
"""

from __future__ import annotations

import contextlib
import html as html_lib
import json
import re
from typing import Any

import jsonschema

from rollsafe.incidents.model import iso
from rollsafe.monitor.samples import read_probe_buckets
from tests.conftest import REPO
from tests.deploy.conftest import ENV, SERVICE
from tests.incidents._reports import (
    HINDSIGHT,
    STATUS,
    Reports,
    Verdicts,
    cli_problems,
    own_words,
    section,
    text_of,
    unquoted_html,
    unquoted_markdown,
    whys,
)
from tests.incidents._scenarios import Incident, RequestEntry, rfc3339

__all__ = ["check_common"]

SCHEMA = REPO / "docs" / "why.schema.json"


def check_common(
    v: Verdicts, incident: Incident, reports: Reports, logged: list[RequestEntry]
) -> None:
    """Every shared check of ``reports``; ``logged``: the request log over their window."""
    for name, (code, _out, err) in reports.outputs.items():
        v.check(f"`rollsafe {name}` exits 0", code == 0, f"exit {code}: {err.strip()[-800:]}")
        # every source was readable: a warning would name one that was not
        v.check(f"`rollsafe {name}` writes nothing on stderr", not err.strip(), err[-800:])
    v.check("`why --format json` is JSON", reports.report, reports.json_text[:500])
    _schema(v, reports.report)
    _citations(v, incident, reports)
    _impact(v, incident, reports, logged)
    _leaks_and_words(v, incident, reports)
    _markdown(v, reports)
    _html(v, incident, reports)
    _listing(v, reports)


def _schema(v: Verdicts, report: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8")) if SCHEMA.exists() else None
    if v.check("docs/why.schema.json exists", schema is not None) and report:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            v.check("docs/why.schema.json is a valid JSON Schema (draft 2020-12)", True)
        except jsonschema.SchemaError as exc:
            v.check("docs/why.schema.json is a valid JSON Schema (draft 2020-12)", False, exc)
            return
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(report), key=lambda e: list(e.path))
        v.check(
            "the JSON validates against docs/why.schema.json",
            not errors,
            "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]),
        )


def _citations(v: Verdicts, incident: Incident, reports: Reports) -> None:
    """Every item cites ids that exist; every log and secret-version source is real."""
    report = reports.report
    evidence = report.get("evidence") or []
    ids = [e.get("id") for e in evidence]
    v.check("evidence ids are unique", len(ids) == len(set(ids)), ids)
    known = set(ids)
    for part in ("whys", "factors", "actions", "timeline", "went_well"):
        items = report.get(part) or []
        bare = [text_of(i)[:120] for i in items if not i.get("evidence")]
        v.check(f"every {part} item cites >= 1 evidence id", not bare, bare)
        dangling = sorted({c for i in items for c in i.get("evidence") or [] if c not in known})
        v.check(f"every id {part} cites exists in evidence[]", not dangling, dangling)
    dangling = sorted(set((report.get("impact") or {}).get("evidence") or []) - known)
    v.check("every id impact cites exists in evidence[]", not dangling, dangling)
    v.check("the chain has links", whys(report), "no whys")
    # RFC 3339 UTC with milliseconds sorts as text
    times = [t.get("time") or "" for t in report.get("timeline") or []]
    v.check("the timeline is in time order", times == sorted(times), times)
    since = rfc3339(reports.since - 600)
    inserts = {e.insert_id for e in incident.google.entries(f'timestamp>="{since}"')}
    missing = [
        e["source"]
        for e in evidence
        if e["source"].startswith("log://") and e["source"].rsplit("/", 1)[-1] not in inserts
    ]
    v.check("every log:// source is an entry in Cloud Logging", not missing, missing)
    for e in evidence:
        found = re.fullmatch(r"sm://([^/]+)/versions/(\d+)", e["source"])
        if found:
            versions = incident.google.version_times(found.group(1))
            v.check(f"{e['source']} exists in Secret Manager", int(found.group(2)) in versions)


def _impact(v: Verdicts, incident: Incident, reports: Reports, logged: list[RequestEntry]) -> None:
    """Statuses, counts and first/last bad answers as the request log holds them."""
    report = reports.report
    service_host = incident.google.service_host()
    users = [e for e in logged if e.host == service_host]
    bad: dict[str, int] = {}
    for entry in users:
        if entry.status >= 500:
            bad[str(entry.status)] = bad.get(str(entry.status), 0) + 1
    tag_bad = sum(1 for e in logged if e.status >= 500 and e.host != service_host)
    impact = report.get("impact") or {}
    requests = impact.get("requests") or {}
    v.check(
        "impact.statuses are the 5xx the request logs hold",
        impact.get("statuses") == bad,
        f"report {impact.get('statuses')}, logs {bad}",
    )
    v.check(
        "impact.requests.failed is the logs' count of 5xx on the service URL",
        requests.get("failed") == sum(bad.values()),
        f"report {requests}, logs {sum(bad.values())}",
    )
    v.check(
        "impact.requests.tag_failed is the logs' count of 5xx on tag URLs",
        requests.get("tag_failed") == tag_bad,
        f"report {requests}, logs {tag_bad}",
    )
    v.check(
        "impact.requests.total is the logs' count on the service URL",
        requests.get("total") == len(users),
        f"report {requests}, logs {len(users)} (+{len(logged) - len(users)} on tags)",
    )
    # the monitor's probes are bad answers too (on its own clock: when it sent the probe)
    buckets = read_probe_buckets(
        incident.site.journal.store, ENV, SERVICE, since=reports.since, until=reports.until
    )
    times = [e.time for e in users if e.status >= 500]
    times += [t for b in buckets for t in (b.first_failed, b.last_failed) if t is not None]
    first, last = iso(min(times, default=None)), iso(max(times, default=None))
    v.check(
        "impact's first and last bad answers are the logs' (and probes') first and last",
        (impact.get("first_bad"), impact.get("last_bad")) == (first, last),
        f"report {impact.get('first_bad')}..{impact.get('last_bad')}, logs {first}..{last}",
    )
    served = {str(e.status) for e in logged if e.status >= 500}
    written = {s for text in own_words(report) for s in STATUS.findall(text)}
    v.check(
        "every 5xx status the report writes is one the logs show",
        written <= served,
        f"written {sorted(written)}, logged {sorted(served)}",
    )
    md_written = set(STATUS.findall(unquoted_markdown(reports.markdown)))
    v.check(
        "every 5xx status the Markdown writes is one the logs show",
        md_written <= served,
        f"written {sorted(md_written)}, logged {sorted(served)}",
    )


def _leaks_and_words(v: Verdicts, incident: Incident, reports: Reports) -> None:
    outputs = [
        reports.json_text,
        reports.markdown,
        reports.html,
        reports.listing,
        *(o for _, out, err in reports.outputs.values() for o in (out, err)),
        *incident.monitor_output,
    ]
    leaked = [i for i, value in enumerate(incident.values) if any(value in o for o in outputs)]
    v.check(
        "no secret value in any format, listing or stderr",
        not leaked,
        f"{len(leaked)} value(s) of {len(incident.values)} leaked",
    )
    said = [t for t in own_words(reports.report) if HINDSIGHT.search(t)]
    v.check("no hindsight words in the JSON's own text", not said, said)
    for name, text in (
        ("Markdown", unquoted_markdown(reports.markdown)),
        ("HTML", unquoted_html(reports.html)),
    ):
        v.check(
            f"no hindsight words in the {name} (outside quotes)",
            not HINDSIGHT.search(text),
            HINDSIGHT.findall(text),
        )


_HEADINGS = (
    "Summary",
    "Impact",
    "Root Causes",
    "Trigger",
    "Contributing factors",
    "Action Items",
    "Timeline",
    "Supporting information",
)
_TYPES = {"mitigate", "prevent", "process"}


def _markdown(v: Verdicts, reports: Reports) -> None:
    """The postmortem's sections, typed action items with real commands, factor types."""
    md, report = reports.markdown, reports.report
    for heading in _HEADINGS:
        v.check(f"the Markdown has ## {heading}", re.search(rf"^## {heading}\s*$", md, re.M | re.I))
    rows = [r for r in section(md, "Action Items").splitlines() if r.startswith("|")][2:]
    types = [r.strip("|").split("|")[0].strip().strip("*`").lower() for r in rows]
    v.check(
        "the Markdown's action items are typed mitigate/prevent/process",
        rows and set(types) <= _TYPES,
        rows,
    )
    actions = report.get("actions") or []
    v.check(
        "every action has a type and a command in the JSON",
        actions and all(a.get("type") in _TYPES and a.get("command") for a in actions),
        actions,
    )
    wrong = [p for a in actions for p in cli_problems(a.get("command", ""))]
    v.check("every rollsafe command in the actions parses with the real CLI", not wrong, wrong)
    factor_types = {f.get("type") for f in report.get("factors") or []}
    v.check(
        "factors are marked trigger or latent, with a trigger",
        "trigger" in factor_types and factor_types <= {"trigger", "latent"},
        factor_types,
    )
    table = set(re.findall(r"\bE\d+\b", section(md, "Supporting information")))
    cited = set(re.findall(r"\bE\d+\b", md.split("## Supporting information")[0]))
    v.check(
        "every id the Markdown cites is in its evidence table",
        cited <= table,
        sorted(cited - table),
    )


def _html(v: Verdicts, incident: Incident, reports: Reports) -> None:
    """One page that fetches nothing and shows the chain and every evidence id."""
    html = reports.html
    v.check(
        "the HTML is one page", "<html" in html.lower() and "</html>" in html.lower(), html[:200]
    )
    fetch = r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//"
    v.check("the HTML fetches nothing", not re.search(fetch, html, re.I))
    page = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", html)).split())
    missing = [
        w.get("claim")
        for w in whys(reports.report)
        if " ".join(str(w.get("claim", "")).replace("`", "").split()) not in page
    ]
    v.check("the HTML shows every link of the chain", not missing, missing)
    ids = [e["id"] for e in reports.report.get("evidence") or []]
    v.check("the HTML shows every evidence id", all(re.search(rf"\b{i}\b", html) for i in ids))
    printed = reports.outputs["why html"][1]
    v.check(
        "`why -o FILE` prints the file's path",
        str(incident.site.root / "report.html") in printed,
        printed,
    )


def _listing(v: Verdicts, reports: Reports) -> None:
    """``incidents`` lists the episode; ``why`` alone reports it."""
    episode = reports.episode
    v.check("`rollsafe incidents` lists the episode", episode is not None, reports.episodes)
    if episode is None:
        return
    v.check(
        "the listing (text) names the episode", episode["id"] in reports.listing, reports.listing
    )
    v.check(
        "the episode id is INC-YYYYMMDD-HHMMSS-SERVICE",
        re.fullmatch(rf"INC-\d{{8}}-\d{{6}}-{SERVICE}", episode["id"]),
        episode["id"],
    )
    latest: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        latest = json.loads(reports.outputs["why latest"][1])
    shown = (latest.get("summary") or {}).get("episode") or {}
    v.check(
        "`why` without --incident or --since reports the most recent episode",
        shown.get("id") == episode["id"],
        shown,
    )
