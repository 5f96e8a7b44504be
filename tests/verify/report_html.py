"""A strict structural reader of the report page (shared by the report tests and the browser test).

Python's ``html.parser`` is lenient; :func:`parse_page` adds what a hand-written page must satisfy: every
non-void element closed in order, no stray end tag, unique ids, internal links that resolve, no
external resource, and images that are PNG data URIs with a non-zero size.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Page:
    ids: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  #: alt, width, height (from the PNG header)
    sections: list[str] = field(default_factory=list)  #: ids of <section class="paper">
    scripts: int = 0
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.stack: list[tuple[str, tuple[int, int]]] = []

    def handle_decl(self, decl: str) -> None:
        if decl.lower() != "doctype html":
            self.page.errors.append(f"unexpected declaration {decl!r}")

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))
        if "id" in a:
            self.page.ids.append(a["id"])
        if tag == "section" and "paper" in (a.get("class") or "").split():
            self.page.sections.append(a.get("id", ""))
        if tag == "script":
            self.page.scripts += 1
        for key in ("href", "src"):
            value = a.get(key)
            if value is None:
                continue
            if value.startswith("#"):
                self.page.links.append(value[1:])
            elif not value.startswith("data:"):
                self.page.external.append(value)
        if tag == "link":
            self.page.external.append(f"<link {a}>")
        if tag == "img":
            src = a.get("src") or ""
            prefix = "data:image/png;base64,"
            if not src.startswith(prefix):
                self.page.errors.append(f"image {a.get('alt')!r} is not an embedded PNG")
                return
            try:
                width, height = png_size(base64.b64decode(src[len(prefix):], validate=True))
            except ValueError as exc:
                self.page.errors.append(f"image {a.get('alt')!r}: {exc}")
                return
            self.page.images.append({"alt": a.get("alt"), "width": width, "height": height})

    def handle_startendtag(self, tag, attrs):
        if tag not in VOID:
            self.page.errors.append(f"self-closing <{tag}/> at {self.getpos()}")
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            self.page.errors.append(f"end tag of the void element {tag} at {self.getpos()}")
            return
        if not self.stack:
            self.page.errors.append(f"stray </{tag}> at {self.getpos()}")
            return
        open_tag, where = self.stack.pop()
        if open_tag != tag:
            self.page.errors.append(f"</{tag}> at {self.getpos()} closes <{open_tag}> opened at {where}")


def parse_page(text: str) -> Page:
    page = Page()
    reader = _Reader(page)
    reader.feed(text)
    reader.close()
    for tag, where in reader.stack:
        page.errors.append(f"<{tag}> opened at {where} is never closed")
    duplicates = sorted({i for i in page.ids if page.ids.count(i) > 1})
    if duplicates:
        page.errors.append(f"duplicate ids {duplicates[:5]}")
    dangling = sorted(set(page.links) - set(page.ids))
    if dangling:
        page.errors.append(f"links to missing ids {dangling[:5]}")
    return page
