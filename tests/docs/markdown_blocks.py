"""The fenced code blocks of the README and the docs pages, with their test directives.

A block's test directive is an HTML comment on the line before it, invisible on the
site and on GitHub::

    <!-- docs-test: servers -->            run with the suite's Redis and DynamoDB
    <!-- docs-test: servers, setup=ssm --> and run the named setup first
    <!-- docs-test: expect=TEXT -->        and check that it prints TEXT
    <!-- docs-test: skip (why) -->         not run: rare, explicit and counted

Every other Python block runs as pasted, in a fresh interpreter with L1 only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
# A comma starts a new option only before an option's name, so expect=TEXT may hold commas.
OPTION_START = re.compile(r",\s*(?=servers\b|setup=|expect=|skip\b)")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it stands, its language, its text and its directive."""

    path: Path
    line: int
    lang: str
    code: str
    directive: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def options(self) -> dict[str, str]:
        """The directive's comma-separated words: ``servers``, ``setup=ssm``, ``skip (why)``."""
        found: dict[str, str] = {}
        parts = OPTION_START.split(self.directive)
        for part in filter(None, (p.strip() for p in parts)):
            name, _, value = part.partition("=")
            if name.startswith("skip"):
                name, value = "skip", part[len("skip") :].strip(" ():")
            found[name.strip()] = value.strip()
        return found


def pages() -> list[Path]:
    """README.md and every Markdown page of the site, snippets included."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        previous = next((ln for ln in reversed(lines[:index]) if ln.strip()), "")
        directive = DIRECTIVE.match(previous)
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        found.append(
            Block(
                path=path,
                line=index + 1,
                lang=opening["lang"].lower(),
                code="\n".join(body) + "\n",
                directive=directive["body"] if directive else "",
            )
        )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


def python_blocks() -> list[Block]:
    return [block for block in all_blocks() if block.lang in {"python", "py"}]
