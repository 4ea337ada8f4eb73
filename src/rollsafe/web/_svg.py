"""The status page's charts as inline SVG: the 90-day bar, the response-time sparkline
and a service's response-time and error-rate chart with deploy and rollback markers.

Every chart is ``role="img"`` with a ``<title>`` saying in words what it draws (the text
alternative); the numbers are also in the page as text. The markup is kept small because
the overview draws two charts per service: the 90-day bar is run-length encoded (a run of
days in one state is one ``<rect>``), the sparkline is one ``<path>``, coordinates are
integers or one decimal, and colours come from short CSS classes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from html import escape

from rollsafe.web.model import ChartPoint, DayBucket, Marker

__all__ = ["chart", "day_bar", "sparkline"]


def _num(value: float) -> str:
    """A coordinate: an integer when it is one, else one decimal."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _day(moment: float) -> str:
    return time.strftime("%b %d", time.gmtime(moment))


_WORDS = {
    "o": "operational",
    "d": "degraded",
    "p": "partial outage",
    "m": "major outage",
    "n": "no data",
}


_RUN = re.compile(r"(.)\1*")


def day_bar(days: Sequence[DayBucket]) -> str:
    """The 90-day bar: one rect per run of days in the same state, oldest on the left;
    its title counts the days in each state and names the last bad one."""
    # a state's class is its first letter (operational, degraded_performance,
    # partial_outage, major_outage): one string of 90 letters, its runs found by a regex
    letters = "".join(["n" if b.uptime is None else b.state[0] for b in days])
    runs = [(m.group(1), m.end() - m.start()) for m in _RUN.finditer(letters)]
    counts = {c: letters.count(c) for c in "odpmn"}
    last = max(letters.rfind("d"), letters.rfind("p"), letters.rfind("m"))
    last_bad = days[last] if last >= 0 else None
    said = ", ".join(f"{counts[c]} {_WORDS[c]}" for c in "odpmn" if counts[c])
    if last_bad is not None:
        said += f"; last bad day {_day(last_bad.start)}: {last_bad.state.label.lower()}"
    rects, x = [], 0
    for cls, width in runs:
        rects.append(f'<rect x="{x}" width="{width}" height="9" class="{cls}"/>')
        x += width
    return (
        f'<svg class="b" data-chart="days" role="img" viewBox="0 0 {max(x, 1)} 9">'
        f"<title>{len(days)} days: {said or 'no data'}</title>{''.join(rects)}</svg>"
    )


def _path(values: Sequence[float | None], xs: Sequence[float], y: Callable[[float], float]) -> str:
    """One path through the points that have a value; a gap starts a new segment."""
    parts, pen = [], "M"
    for x, value in zip(xs, values, strict=True):
        if value is None:
            pen = "M"
            continue
        parts.append(f"{pen}{_num(x)} {_num(y(value))}")
        pen = "L"
    return "".join(parts)


def sparkline(points: Sequence[ChartPoint], what: str = "Response time, 24 h") -> str:
    """A small response-time line: one path of integer coordinates (x two apart, y 1..19),
    scaled to its own maximum."""
    values = [p.latency for p in points]
    known = [v for v in values if v is not None]
    width = max(2 * (len(values) - 1), 2)
    if not known:
        return (
            f'<svg class="k" data-chart="latency" role="img" viewBox="0 0 {width} 20">'
            f"<title>{what}: no data</title></svg>"
        )
    top = max(known) or 1.0
    scale = 18 / top
    if len(known) == len(values):  # the usual case: one segment
        d = "M" + "L".join([f"{2 * n} {int(19.5 - v * scale)}" for n, v in enumerate(known)])
    else:
        parts, pen = [], "M"
        for n, value in enumerate(values):
            if value is None:
                pen = "M"
                continue
            parts.append(f"{pen}{2 * n} {int(19.5 - value * scale)}")
            pen = "L"
        d = "".join(parts)
    title = f"{what}: mean {_ms(sum(known) / len(known))}, max {_ms(top)}, last {_ms(known[-1])}"
    return (
        f'<svg class="k" data-chart="latency" role="img" viewBox="0 0 {width} 20">'
        f'<title>{title}</title><path class="l" d="{d}"/></svg>'
    )


# -- the service chart -------------------------------------------------------------------

_W, _H, _LEFT, _TOP, _LAT_H, _GAP, _ERR_H = 720, 200, 48, 8, 120, 14, 40


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def chart(
    points: Sequence[ChartPoint],
    markers: Sequence[Marker],
    *,
    label: str,
    range_key: str,
    start: float,
    end: float,
) -> str:
    """Response time (line, top) and error rate (bars, bottom) over ``[start, end]``, with
    a vertical line per deploy (solid) or rollback (dashed) in the window."""
    span = max(end - start, 1.0)
    width = _W - _LEFT - 8

    def x_of(moment: float) -> float:
        return _LEFT + width * (moment - start) / span

    latencies = [p.latency for p in points]
    known = [v for v in latencies if v is not None]
    top = max(known, default=0.0) or 1.0
    lat_y0 = _TOP + _LAT_H
    err_y0 = lat_y0 + _GAP + _ERR_H
    d = _path(latencies, [x_of(p.start) for p in points], lambda v: lat_y0 - _LAT_H * v / top)
    step = width / max(len(points), 1)
    bars = []
    for p in points:
        if p.error_rate:
            h = max(_ERR_H * min(p.error_rate, 1.0), 1.0)
            bars.append(
                f'<rect class="e" x="{_num(x_of(p.start))}" y="{_num(err_y0 - h)}" '
                f'width="{_num(max(step - 0.5, 0.5))}" height="{_num(h)}"/>'
            )
    shown = [m for m in markers if start <= m.at <= end]
    marks = []
    for m in shown:
        x = _num(x_of(m.at))
        cls = "rb" if m.kind == "rollback" else "dep"
        text = f"{m.kind} {m.deploy_id} at {_when(m.at)}: {m.label}"
        if m.outcome:
            text += f" ({m.outcome})"
        marks.append(
            f'<g data-marker="{escape(m.kind)}" data-deploy="{escape(m.deploy_id)}">'
            f"<title>{escape(text)}</title>"
            f'<line class="{cls}" x1="{x}" x2="{x}" y1="{_TOP}" y2="{err_y0}"/></g>'
        )
    errors = [p.error_rate for p in points if p.error_rate is not None]
    words = [label]
    words.append(
        f"response time mean {_ms(sum(known) / len(known))}, max {_ms(max(known))}"
        if known
        else "no response-time data"
    )
    words.append(f"error rate max {max(errors):.1%}" if errors else "no error-rate data")
    kinds = [m.kind for m in shown]
    words.append(f"{kinds.count('deploy')} deploys, {kinds.count('rollback')} rollbacks")
    title = "; ".join(words)
    axes = (
        f'<line class="g" x1="{_LEFT}" x2="{_W - 8}" y1="{lat_y0}" y2="{lat_y0}"/>'
        f'<line class="g" x1="{_LEFT}" x2="{_W - 8}" y1="{err_y0}" y2="{err_y0}"/>'
        f'<text class="x" x="0" y="{_TOP + 10}">{_ms(top) if known else ""}</text>'
        f'<text class="x" x="0" y="{lat_y0}">0 ms</text>'
        f'<text class="x" x="0" y="{err_y0 - _ERR_H + 10}">100% err</text>'
        f'<text class="x" x="{_LEFT}" y="{_H - 2}">{escape(_when(start))}</text>'
        f'<text class="x" x="{_W - 8}" y="{_H - 2}" text-anchor="end">{escape(_when(end))}</text>'
    )
    return (
        f'<svg class="c" data-chart="service" data-range="{escape(range_key)}" role="img" '
        f'viewBox="0 0 {_W} {_H}"><title>{escape(title)}</title>{axes}'
        f'<path class="l" d="{d}"/>{"".join(bars)}{"".join(marks)}</svg>'
    )
