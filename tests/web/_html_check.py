"""Structure checks of a status page with ``html.parser``: well nested, unique ids, the
skip link's target, one ``<h1>``, tables with captions and scoped headers, every chart an
image with a title first, no inline style, no external fetch."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
#: SVG elements written self-closed (``<rect .../>``)
_SELF_CLOSED_OK = {"rect", "path", "line", "circle"}


@dataclass
class Page:
    """What the parser found."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    h1: int = 0
    text: list[str] = field(default_factory=list)

    def attrs(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    def having(self, attr: str) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.tags if attr in a]


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[str] = []
        self.svg_first: list[bool] = []  # per open svg: waiting for its first child

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._child(tag)
        self.page.tags.append((tag, a))
        if a.get("id"):
            self.page.ids.append(a["id"])
        if "style" in a:
            self.page.errors.append(f"inline style on <{tag}>")
        if tag == "h1":
            self.page.h1 += 1
        for attr in ("src", "href"):
            value = a.get(attr) or ""
            if value.startswith(("http:", "https:", "//")) and tag != "a":
                self.page.errors.append(f"external fetch <{tag} {attr}={value}>")
        if tag in _VOID:
            return
        self.stack.append(tag)
        if tag == "svg":
            if a.get("role") != "img":
                self.page.errors.append("an <svg> without role=img")
            self.svg_first.append(True)

    def _child(self, tag: str) -> None:
        if self.svg_first and self.svg_first[-1] and self.stack and self.stack[-1] == "svg":
            if tag != "title":
                self.page.errors.append(f"an <svg> whose first child is <{tag}>, not <title>")
            self.svg_first[-1] = False

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID and tag not in _SELF_CLOSED_OK:
            self.page.errors.append(f"<{tag}/> self-closed")
        self._child(tag)
        self.page.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.page.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else '-'}>")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == "svg" and self.svg_first.pop():
            self.page.errors.append("an empty <svg> (no <title>)")

    def handle_data(self, data: str) -> None:
        self.page.text.append(data)


def check(html: str) -> Page:
    """Parse ``html`` and raise AssertionError listing what is wrong with it."""
    assert html.startswith("<!DOCTYPE html>"), html[:40]
    parser = _Checker()
    parser.feed(html)
    parser.close()
    page = parser.page
    if parser.stack:
        page.errors.append(f"unclosed: {parser.stack}")
    dupes = {i for i in page.ids if page.ids.count(i) > 1}
    if dupes:
        page.errors.append(f"duplicate ids: {sorted(dupes)}")
    if page.h1 != 1:
        page.errors.append(f"{page.h1} <h1> elements")
    html_tag = page.attrs("html")
    if not html_tag or html_tag[0].get("lang") != "en":
        page.errors.append("<html> without lang")
    skip = [a for a in page.attrs("a") if a.get("class") == "skip"]
    if not skip or skip[0].get("href") != "#main" or "main" not in page.ids:
        page.errors.append("no skip link to #main")
    for th in page.attrs("th"):
        if th.get("scope") not in ("col", "row"):
            page.errors.append("a <th> without scope")
    if len(page.attrs("table")) != len(page.attrs("caption")):
        page.errors.append("a table without caption")
    assert not page.errors, page.errors[:10]
    return page
