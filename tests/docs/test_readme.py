"""The README is the front door: two screens at most, and every link in it leads to a file that exists."""

from __future__ import annotations

import re

from docs_markdown import REPO

LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    targets = LINK.findall(text)
    assert len(targets) > 20  # the map into the docs
    for target in targets:
        assert "://" not in target, f"{target}: the README links into the repository only"
        path = target.split("#")[0]
        assert (REPO / path).is_file(), f"README links to {target}, which does not exist"
    # The two commands CI and a new user run.
    assert "make run" in text and "make test" in text
