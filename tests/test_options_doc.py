"""docs/options.md's table is OPTIONS, row for row: a new option cannot go undocumented.

Run ``python tests/test_options_doc.py`` to rewrite the table after changing OPTIONS.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT / "src"))

from pytest_skills.options import OPTIONS, Kind, Option  # noqa: E402

PAGE = ROOT / "docs" / "options.md"
START, END = "<!-- options table: generated from OPTIONS -->", "<!-- end of options table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _flag(option: Option) -> str:
    if option.flag is None:
        return ""
    if option.kind is Kind.FLAG:
        return f"`{option.flag}`"
    value = option.metavar or "VALUE"
    if option.bare_value is not None:
        return f"`{option.flag}[={value}]`"
    if option.nargs == "+":
        return f"`{option.flag} {value} [{value} ...]`"
    return f"`{option.flag}={value}`"


def table() -> str:
    rows = ["| option | ini key | environment | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        ini = f"`{option.ini}`" if option.ini else ""
        env = f"`{option.env}`" if option.env else ""
        rows.append(f"| {_flag(option)} | {ini} | {env} | {_cell(option.help)} |")
    return "\n".join(rows)


def documented() -> str:
    text = PAGE.read_text(encoding="utf-8")
    return text.partition(START)[2].partition(END)[0].strip()


def test_the_options_page_lists_every_option_as_options_py_declares_it() -> None:
    assert documented() == table(), (
        "docs/options.md disagrees with OPTIONS: run python tests/test_options_doc.py"
    )


def test_every_option_is_in_the_table_once() -> None:
    text = documented()
    for option in OPTIONS:
        named = option.flag or option.ini
        assert named is not None
        assert len(re.findall(f"`{re.escape(named)}[`=\\[ ]", text)) == 1, named


def rewrite() -> None:
    text = PAGE.read_text(encoding="utf-8")
    before, _, rest = text.partition(START)
    after = rest.partition(END)[2]
    PAGE.write_text(f"{before}{START}\n{table()}\n{END}{after}", encoding="utf-8")


if __name__ == "__main__":
    rewrite()
