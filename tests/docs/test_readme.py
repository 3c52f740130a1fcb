"""The README is a front door: install, an example and the contributor commands up front."""

from __future__ import annotations

import re

from tests.docs.markdown_blocks import ROOT, blocks

README = ROOT / "README.md"
FIRST_SCREEN = 60  # lines


def test_the_first_screen_has_install_an_example_and_the_two_make_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    screen = "\n".join(lines[:FIRST_SCREEN])
    assert "## Install" in screen
    assert 'pip install "stratacache[redis,dynamodb]"' in screen
    assert "{{resolve:ssm:/stratacache/" in screen  # the layer ARN recipe
    assert "{{resolve:ssm:/aws/service/powertools/" in screen
    assert "`make demo`" in screen
    assert "`make test`" in screen
    first_python = next(b for b in blocks(README) if b.lang == "python")
    assert first_python.line < FIRST_SCREEN
    assert first_python.directive == ""  # runs with L1 only, no servers
    assert len(first_python.code.strip().splitlines()) <= 15


def test_the_readme_stays_short_and_links_every_feature_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert 120 <= len(text.splitlines()) <= 250
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", text))
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "features").glob("*.md")}
    assert pages <= linked, sorted(pages - linked)
    for page in linked:
        assert (ROOT / page).is_file(), page
