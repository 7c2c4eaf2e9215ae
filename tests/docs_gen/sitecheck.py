"""Read a built site back: the links and ids of each page, and what they resolve to."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Links(HTMLParser):
    """Collects href/src/xlink:href values and element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src", "xlink:href"):
                self.links.append(value)
            elif name == "id":
                self.ids.add(value)


def parse(page: Path) -> _Links:
    """Links and ids of an HTML page."""
    parser = _Links()
    parser.feed(page.read_text())
    return parser


def md_links(page: Path) -> tuple[list[str], set[str]]:
    """Links and anchor ids of a Markdown page."""
    text = page.read_text()
    return re.findall(r"\]\(([^)\s]+)\)", text), set(re.findall(r'<a id="([^"]+)">', text))


def broken_links(root: Path, markdown: bool = False) -> list[str]:
    """Every internal link of the site whose file or #anchor does not exist."""
    pages = sorted(root.rglob("*.md" if markdown else "*.html"))
    ids = {p: (md_links(p)[1] if markdown else parse(p).ids) for p in pages}
    broken = []
    for page in pages:
        for link in md_links(page)[0] if markdown else parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_file():
                broken.append(f"{page.relative_to(root)} -> {link}")
            elif parts.fragment and target in ids and parts.fragment not in ids[target]:
                broken.append(f"{page.relative_to(root)} -> {link} (no #{parts.fragment})")
    return broken


def all_text(root: Path, suffixes: tuple[str, ...] = (".html", ".md", ".json", ".js", ".svg", ".yml")) -> str:
    """Every text file of a build, concatenated."""
    return "\n".join(p.read_text() for p in sorted(root.rglob("*")) if p.suffix in suffixes)
