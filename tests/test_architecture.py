"""The shape issue 11 left: one record type, no import cycles, a light plugin import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from pytest_skills.models import Response, Usage
from pytest_skills.report.records import (
    ItemRecord,
    call_result,
    from_properties,
    to_properties,
)

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "pytest_skills"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module's imports of the package's own modules, at any depth of the code."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {target for target in found if target in modules and target != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycles() -> None:
    assert _cycle(_imports()) is None


def test_a_cycle_would_be_found() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_private_pytest_api_is_used() -> None:
    imports = [
        path.name
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any(
            (getattr(node, "module", None) or alias.name).startswith("_pytest")
            for alias in node.names
        )
    ]
    assert imports == []


def test_importing_the_plugin_loads_no_sdk_and_no_llama_cpp() -> None:
    code = (
        "import sys, pytest_skills.plugin\n"
        "heavy = ('anthropic', 'openai', 'llama_cpp', 'httpx', 'jinja2')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_record_round_trips_through_json_as_xdist_sends_it() -> None:
    answer = Response(text="the key is sk-secret-123456", usage=Usage(3, 4), latency_s=0.5)
    record = ItemRecord(
        nodeid="f.skill.yaml::c[m]",
        skill="demo",
        case="c",
        file="f.skill.yaml",
        model="m",
        resolved="openai:m",
        results=(
            call_result(
                condition="with_skill",
                trial=0,
                cache_key="k1",
                response=answer,
                error=None,
                passed=True,
                graded_by="check",
                redact=lambda text: text.replace("sk-secret-123456", "[redacted]"),
            ),
            call_result(
                condition="baseline",
                trial=0,
                cache_key="k2",
                response=None,
                error="no key",
                passed=False,
                graded_by="check",
                redact=str,
            ),
        ),
    )
    properties = to_properties(record)
    assert dict(properties)["skill_with_skill"] == "1/1"
    assert "skill_baseline" not in dict(properties)  # a failed call is not graded
    back = from_properties(properties)
    assert back == record
    assert back.results[0].output == "the key is [redacted]"
    assert back.results[1].passed is None and back.results[1].graded_by is None
    assert back.cache_keys == {"k1", "k2"}
