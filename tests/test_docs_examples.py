"""The docs' examples run: every fenced block after ``<!-- run: PATH [key=value ...] -->``.

The blocks of one page are written into one project (at the PATH each names, beside a
SKILL.md for every ``skills/<name>/`` they mention), which is run against the loopback
provider. Options: ``model=SPEC`` (the model to name; default Haiku on loopback) and
``outcome=passed`` (every item must pass, not merely run without an error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import HAIKU, SKILL_MD

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARK = re.compile(
    r"^<!-- run: (?P<path>\S+)(?P<options>(?: \w+=\S+)*) -->\n```\w*\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Example:
    path: str
    body: str
    options: dict[str, str] = field(default_factory=dict)


def examples(page: Path) -> list[Example]:
    found = []
    for match in MARK.finditer(page.read_text(encoding="utf-8")):
        pairs = (item.split("=", 1) for item in match["options"].split())
        found.append(Example(match["path"], match["body"], dict(pairs)))
    return found


PAGES = sorted(page for page in DOCS.glob("*.md") if examples(page))


def test_the_docs_have_runnable_examples() -> None:
    names = {page.name for page in PAGES}
    assert {"getting-started.md", "extending.md", "formats.md", "python.md"} <= names


@pytest.mark.usefixtures("provider_env")
@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_a_pages_examples_run(pytester: pytest.Pytester, page: Path) -> None:
    found = examples(page)
    options: dict[str, str] = {}
    for example in found:
        options.update(example.options)
        target = pytester.path / example.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(example.body, encoding="utf-8")
    skills = {"kernel-builder"} | {
        m for e in found for m in re.findall(r"skills/([\w-]+)", e.path + e.body)
    }
    for name in skills:
        skill_md = pytester.path / "skills" / name / "SKILL.md"
        skill_md.parent.mkdir(parents=True, exist_ok=True)
        skill_md.write_text(SKILL_MD.format(name=name, marker="AUR-7"), encoding="utf-8")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", options.get("model", HAIKU)
    )
    output = result.stdout.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    outcomes = result.parseoutcomes()
    assert "errors" not in outcomes and "error" not in outcomes, output
    assert sum(outcomes.get(key, 0) for key in ("passed", "failed", "xfailed", "xpassed")) > 0, (
        output
    )
    if options.get("outcome") == "passed":
        assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) > 0, output


def test_the_readme_is_short_and_its_links_lead_somewhere() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250, "move detail into docs/, keep the README short"
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme):
        assert (DOCS.parent / target).exists(), f"README links to a missing {target}"
