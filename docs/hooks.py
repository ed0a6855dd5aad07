"""mkdocs hook: pages include the repository's own Markdown instead of copies, and links written
for GitHub's view of the repository point at the site's pages.

A line ``--8<-- "FILE"`` is replaced by FILE (relative to the repository root), and
``--8<-- "FILE:NAME"`` by the part of FILE between ``<!-- --8<-- [start:NAME] -->`` and
``<!-- --8<-- [end:NAME] -->``; a missing file or section stops the build. Then links such as
``(BENCHMARKS.md)`` or ``(docs/DENOISE.md)`` are pointed at the pages that show them, and the
strict build checks every link that results. A page in a folder of docs/ (``research/speed.md``)
links to the repository's root one level further up (``../../BENCHMARKS.md``), as GitHub shows it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"\s*$', re.M)
PAGES = {
    "README.md": "index.md",
    "BENCHMARKS.md": "benchmarks.md",
    "MODEL.md": "model.md",
    "RELIABILITY.md": "reliability.md",
    "CHANGELOG.md": "changelog.md",
    "CONTRIBUTING.md": "contributing.md",
    "../shared/DESIGN.md": "design.md",
    "examples/": "index.md#examples",
}
LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


class IncludeError(Exception):
    pass


def _include(m: re.Match) -> str:
    path, section = ROOT / m.group(1), m.group(2)
    if not path.is_file():
        raise IncludeError(f"--8<-- {m.group(1)}: no such file")
    text = path.read_text()
    if section:
        start, end = f"<!-- --8<-- [start:{section}] -->", f"<!-- --8<-- [end:{section}] -->"
        if start not in text or end not in text:
            raise IncludeError(f"--8<-- {m.group(1)}:{section}: no such section")
        text = text.split(start, 1)[1].split(end, 1)[0]
    return text.strip("\n")


def _link(m: re.Match, up: str = "") -> str:
    """``up``: the way from the page's folder to docs/ ("" for docs/*.md, "../" for docs/research/*.md)."""
    path, anchor = m.group(1), m.group(2) or ""
    root = up + "../"
    if path not in PAGES and path.startswith(root):  # a page of docs/ linking to the repository's root
        path = path[len(root):]
    if path in PAGES:
        target = PAGES[path]
        return f"]({up}{target}{'' if '#' in target else anchor})"
    if path.startswith("docs/"):
        return f"]({up}{path[len('docs/'):]}{anchor})"
    return m.group(0)


def on_page_markdown(markdown: str, page=None, **kwargs) -> str:
    up = "../" * page.file.src_uri.count("/") if page is not None else ""
    return LINK.sub(lambda m: _link(m, up), INCLUDE.sub(_include, markdown))
