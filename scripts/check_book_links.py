#!/usr/bin/env python3
"""Checks that the built book's internal links, and README.md's relative links, lead somewhere.

  python3 scripts/check_book_links.py [docs/book]

In the built HTML (`mdbook build docs` writes docs/book), every relative `href`/`src` must name a file
of the book (never one outside it: the book is read on its own), and every `#fragment` an element id of
the page it points at. In README.md (read on the forge, next to the sources), every relative link must
name a file of the repository, and a `#fragment` into a Markdown file one of its headings.
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent


class Page(HTMLParser):
    """The links and the ids of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.links.append(value)
            elif name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)


def is_external(link: str) -> bool:
    parts = urlsplit(link)
    return bool(parts.scheme or parts.netloc)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check_book(book: Path) -> list[str]:
    book = book.resolve()
    pages = {p.resolve(): parse(p) for p in book.rglob("*.html")}
    if not pages:
        return [f"{book}: no HTML pages (build the book first: mdbook build docs)"]
    problems = []
    for path, page in sorted(pages.items()):
        where = path.relative_to(book)
        for link in page.links:
            if is_external(link) or link.startswith(("mailto:", "javascript:")):
                continue
            parts = urlsplit(link)
            if parts.path.startswith("/"):
                # Root-relative (mdBook's 404 page): the book is served from its own root.
                target = (book / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if book not in target.parents and target != book:
                problems.append(f"{where}: {link} leads outside the book")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{where}: {link} names no file of the book")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in pages[target].ids:
                problems.append(f"{where}: {link} names no element of {target.relative_to(book)}")
    print(f"book: {sum(len(p.links) for p in pages.values())} links in {len(pages)} pages checked")
    return problems


def slug(heading: str) -> str:
    """The anchor a forge gives a Markdown heading (GitHub's rule, which mdBook's follows)."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(markdown: Path) -> set[str]:
    found, fence = set(), False
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


def check_readme(readme: Path) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    problems, count = [], 0
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if is_external(link) or link.startswith("mailto:"):
            continue
        count += 1
        parts = urlsplit(link)
        target = (readme.parent / unquote(parts.path)) if parts.path else readme
        if not target.exists():
            problems.append(f"{readme.name}: {link} names no file")
        elif parts.fragment and target.suffix == ".md" and parts.fragment not in headings(target):
            problems.append(f"{readme.name}: {link} names no heading of {target.name}")
    print(f"{readme.name}: {count} relative links checked")
    return problems


def main() -> int:
    book = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "book"
    problems = check_book(book) + check_readme(ROOT / "README.md")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} broken link(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
