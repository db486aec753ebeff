"""The Markdown outside docs/ links to files and headings that exist (mkdocs build --strict checks
docs/ itself), and the SLURM example in docs/scaling.md is the script in tools/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "DEVELOPING.md", "plugins/README.md", "results/README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings: lower case, punctuation dropped, spaces to '-'."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", page.read_text())) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("name", PAGES)
def test_relative_links_resolve(name):
    page = ROOT / name
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{name}: {broken}"


def test_anchors_follow_githubs_rule(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# How `compare` decides\n\n## CIFAR-10, development split (issue 11)\n```\n# not a heading\n```\n")
    assert anchors(page) == {"how-compare-decides", "cifar-10-development-split-issue-11"}


def test_the_slurm_example_is_the_script_in_tools():
    text = (ROOT / "docs" / "scaling.md").read_text()
    example = re.search(r"^```python\n# tools/slurm_seqbench.py\n(.*?)^```", text, re.S | re.M).group(1)
    assert example == (ROOT / "tools" / "slurm_seqbench.py").read_text()
