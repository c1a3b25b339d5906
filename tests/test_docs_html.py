"""The rendered docs show no reStructuredText markup.

Markup that Sphinx did not understand is printed as it is: a double
backtick inside bold text (``**Make ``x`` bigger**``) renders as two
literal backticks, an unknown role as ``:meth:`name```.  Neither fails
the build, so this test builds the HTML and reads the text of every page
(code blocks excepted: a listing may hold markup in its docstrings).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("sphinx")

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROLE = re.compile(r":(?:[a-z]+:)?[a-z]+:`")
#: What docutils and furo print into a page for markup they could not use.
ERROR_MARKERS = ('class="problematic"', 'class="system-message"', "ERROR: Adding a table")


class _Text(HTMLParser):
    """The page's text outside <pre>, <script> and <style>."""

    SKIP = frozenset({"pre", "script", "style"})

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(DOCS), str(out)],
        env={**os.environ, "TRIO_BUFWRITER_DOCS_OFFLINE": "1"},
        check=True,
        timeout=600,
    )
    return out


def page_texts(html: Path) -> dict[str, str]:
    texts = {}
    for page in sorted(html.rglob("*.html")):
        if page.parent.name in ("_modules", "_static") or page.name in ("genindex.html",):
            continue
        parser = _Text()
        parser.feed(page.read_text(encoding="utf-8"))
        texts[str(page.relative_to(html))] = "".join(parser.parts)
    return texts


def test_no_page_shows_double_backticks_or_unresolved_roles(html: Path) -> None:
    texts = page_texts(html)
    assert "semantics.html" in texts
    found = []
    for name, text in texts.items():
        for match in re.finditer(r"``|" + ROLE.pattern, text):
            found.append(f"{name}: ...{text[max(match.start() - 60, 0) : match.end() + 40]}...")
    assert not found, "\n".join(found)


def test_no_page_shows_a_markup_error(html: Path) -> None:
    found = [
        f"{page.relative_to(html)}: {marker}"
        for page in sorted(html.rglob("*.html"))
        for marker in ERROR_MARKERS
        if marker in page.read_text(encoding="utf-8")
    ]
    assert not found, "\n".join(found)
