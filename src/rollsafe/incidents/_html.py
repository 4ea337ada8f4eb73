"""The report as one self-contained HTML page (the status page serves it too).

Inline CSS only, no script, no external fetch (a Content-Security-Policy says so to the
browser); headings, tables with ``<th scope>``, and every state written in text, never by
colour alone. Everything recorded is escaped; recorded text is shown in ``<code>``.
"""

from __future__ import annotations

from html import escape

from rollsafe.incidents._text import id_key, seconds, statuses_text, when
from rollsafe.incidents.chain import split_chains
from rollsafe.incidents.model import FactorType, IncidentReport, TimelineEntry, iso
from rollsafe.incidents.report import detection, resolution, status_line

__all__ = ["render_html"]

#: nothing may be fetched or run: the page stands alone
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a;
  --line: #d0d7de; --code: #f3f4f6; --link: #0550ae; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117;
  --muted: #9da7b3; --line: #30363d; --code: #161b22; --link: #79c0ff; } }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-top: 0; } h2 { border-bottom: 1px solid var(--line);
  padding-bottom: .2rem; margin-top: 2rem; }
a { color: var(--link); } a:focus { outline: 2px solid var(--link); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
caption { text-align: left; color: var(--muted); padding: .2rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left;
  vertical-align: top; }
th { background: var(--code); }
code { background: var(--code); padding: 0 .2rem; border-radius: 3px; word-break: break-word; }
.meta { color: var(--muted); } .tag { font-weight: 600; text-transform: uppercase;
  font-size: .8rem; letter-spacing: .03em; border: 1px solid currentColor; border-radius: 3px;
  padding: 0 .25rem; }
ol.chain > li { margin-bottom: .4rem; }
""".strip()


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _inline(text: str) -> str:
    """Escape ``text``, keeping its code spans (quotes of recorded text) as ``<code>``."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans
        return _e(text)
    return "".join(f"<code>{_e(p)}</code>" if i % 2 else _e(p) for i, p in enumerate(parts))


def _refs(ids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f'<a href="#{_e(i.lower())}">{_e(i)}</a>' for i in sorted(ids, key=id_key))


def _table(caption: str, head: list[str], rows: list[list[str]], *, row_header: bool = True) -> str:
    cols = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    body = []
    for row in rows:
        cells = []
        for n, cell in enumerate(row):
            if n == 0 and row_header:
                cells.append(f'<th scope="row">{cell}</th>')
            else:
                cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{cols}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _list(items: list[TimelineEntry], empty: str) -> str:
    if not items:
        return f"<p>{_e(empty)}</p>"
    rows = "".join(
        f"<li><time>{_e(iso(t.time))}</time>: {_inline(t.text)} ({_refs(t.evidence)})</li>"
        for t in items
    )
    return f"<ul>{rows}</ul>"


def _section(title: str, body: str, ident: str) -> str:
    return f'<section aria-labelledby="{ident}"><h2 id="{ident}">{_e(title)}</h2>{body}</section>'


def render_html(report: IncidentReport) -> str:
    """One HTML document holding the whole report; nothing is fetched to show it."""
    impact = report.impact
    share = (
        f" ({impact.requests_failed / impact.requests_total:.2%})" if impact.requests_total else ""
    )
    pshare = f" ({impact.probes_failed / impact.probes_total:.2%})" if impact.probes_total else ""
    impact_rows = [
        ["First bad answer", _e(when(impact.first_bad) if impact.first_bad is not None else "-")],
        ["Last bad answer", _e(when(impact.last_bad) if impact.last_bad is not None else "-")],
        ["Duration", _e(seconds(impact.duration) if impact.duration is not None else "-")],
        [
            "Failed requests (service URL)",
            _e(f"{impact.requests_failed} of {impact.requests_total}{share}"),
        ],
        ["Status codes served (>= 500)", _e(statuses_text(impact.statuses) or "none")],
        ["Failed answers on tag URLs (verification)", _e(impact.tag_failed)],
        ["Failed probes", _e(f"{impact.probes_failed} of {impact.probes_total}{pshare}")],
        ["Revisions", _e(", ".join(impact.revisions) or "-")],
        ["Evidence", _refs(impact.evidence) or "-"],
    ]
    parts = [
        f"<h1>{_e(report.title)}</h1>",
        '<p class="meta">'
        f"<strong>Status:</strong> {_e(status_line(report))}<br>"
        f"<strong>Date:</strong> {_e(when(report.generated))}<br>"
        "<strong>Authors:</strong> generated by <code>rollsafe why</code> from recorded "
        "evidence (no LLM)<br>"
        f"<strong>Environment:</strong> {_e(report.env)}; <strong>services:</strong> "
        f"{_e(', '.join(report.services) or '-')}; <strong>window:</strong> "
        f"{_e(when(report.since))} to {_e(when(report.until))}"
        + (f"; <strong>incident:</strong> {_e(report.episode.id)}" if report.episode else "")
        + "</p>",
        _section("Summary", f"<p>{_inline(report.summary)}</p>", "summary"),
        _section(
            "Impact",
            _table("Measured impact", ["Measure", "Value"], [[_e(n), v] for n, v in impact_rows]),
            "impact",
        ),
        _section("Root Causes", _root_causes(report), "root-causes"),
    ]
    triggers = [f for f in report.factors if f.type is FactorType.TRIGGER]
    parts.append(
        _section(
            "Trigger",
            "<ul>"
            + "".join(f"<li>{_inline(f.text)} ({_refs(f.evidence)})</li>" for f in triggers)
            + "</ul>"
            if triggers
            else "<p>No change before the first bad answer is recorded in the window.</p>",
            "trigger",
        )
    )
    factor_rows = [
        [f'<span class="tag">{_e(f.type.value)}</span>', _inline(f.text), _refs(f.evidence)]
        for f in report.factors
    ]
    parts.append(
        _section(
            "Contributing factors",
            _table(
                "Contributing factors, each a trigger or a latent condition",
                ["Type", "Factor", "Evidence"],
                factor_rows,
            )
            if factor_rows
            else "<p>No contributing factor is recorded.</p>",
            "factors",
        )
    )
    parts.append(
        _section(
            "Resolution",
            _list(
                resolution(report),
                "No rollback, resolved alert or later deploy is recorded in the window.",
            ),
            "resolution",
        )
    )
    parts.append(
        _section(
            "Detection",
            _list(
                detection(report),
                "No alert, failing probe or failed verification is recorded in the window.",
            ),
            "detection",
        )
    )
    action_rows = [
        [
            f'<span class="tag">{_e(a.type.value)}</span>',
            _inline(a.text),
            f"<code>{_e(a.command)}</code>",
            _refs(a.evidence),
        ]
        for a in report.actions
    ]
    parts.append(
        _section(
            "Action Items",
            _table(
                "Action items, each typed mitigate, prevent or process",
                ["Type", "Action", "Command or manifest change", "Evidence"],
                action_rows,
            )
            if action_rows
            else "<p>No action item follows from the evidence.</p>",
            "actions",
        )
    )
    wrong = [w for w in report.whys if w.rule.startswith("symptom.")]
    latent = [f for f in report.factors if f.type is FactorType.LATENT]
    wrong_html = "".join(f"<li>{_inline(w.claim)} ({_refs(w.evidence)})</li>" for w in wrong)
    wrong_html += "".join(f"<li>{_inline(f.text)} ({_refs(f.evidence)})</li>" for f in latent)
    parts.append(
        _section(
            "Lessons Learned",
            '<h3 id="went-well">What went well</h3>'
            + _list(report.went_well, "Nothing in the evidence marks something that went well.")
            + '<h3 id="went-wrong">What went wrong</h3>'
            + (f"<ul>{wrong_html}</ul>" if wrong_html else "<p>Nothing is recorded.</p>"),
            "lessons",
        )
    )
    timeline_rows = [[_e(iso(t.time)), _inline(t.text), _refs(t.evidence)] for t in report.timeline]
    parts.append(
        _section(
            "Timeline",
            _table(
                "Every recorded event in order, times in UTC",
                ["Time (UTC)", "Event", "Evidence"],
                timeline_rows,
            )
            if timeline_rows
            else "<p>No timed event is recorded in the window.</p>",
            "timeline",
        )
    )
    evidence_rows = [
        [
            f'<span id="{_e(e.id.lower())}">{_e(e.id)}</span>',
            _e(e.kind.value),
            _e(iso(e.time) or "-"),
            f"<code>{_e(e.source)}</code>",
            f"<code>{_e(e.excerpt)}</code>",
        ]
        for e in report.evidence
    ]
    parts.append(
        _section(
            "Supporting information",
            _table(
                "Evidence: what was recorded, where it was read",
                ["Id", "Kind", "Time (UTC)", "Source", "Excerpt"],
                evidence_rows,
            )
            if evidence_rows
            else "<p>No evidence was collected.</p>",
            "evidence",
        )
    )
    if report.unreadable:
        items = "".join(
            f"<li>{_e(what)}: <code>{_e(why)}</code></li>" for what, why in report.unreadable
        )
        parts.append(_section("What the report could not read", f"<ul>{items}</ul>", "unreadable"))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(report.title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


def _root_causes(report: IncidentReport) -> str:
    chains = split_chains(report.whys)
    out = [] if chains else ["<p>No causal link is supported by the evidence.</p>"]
    for number, chain in enumerate(chains, 1):
        out.append(f'<h3>Chain {number}: {_inline(chain[0].claim)}</h3><ol class="chain">')
        for why in chain:
            out.append(
                f"<li><strong>{_inline(why.claim)}</strong>, because {_inline(why.because)}. "
                f"Evidence: {_refs(why.evidence)} (rule <code>{_e(why.rule)}</code>)</li>"
            )
        out.append("</ol>")
    if report.gaps:
        rows = [[_inline(g.after), _inline(g.missing), _inline(g.how)] for g in report.gaps]
        out.append('<h3 id="gaps">Where the evidence stops</h3>')
        out.append(
            _table(
                "Where a chain stops: the missing evidence and how to record it next time",
                ["After", "Missing evidence", "How to record it next time"],
                rows,
            )
        )
    return "".join(out)
