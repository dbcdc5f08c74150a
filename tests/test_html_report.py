"""--skill-html: the page's content, its escaping, and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import openai  # noqa: F401
import pytest

from pytest_skills.checks.registry import CheckResult
from pytest_skills.models import Response, Usage
from pytest_skills.report.html import MAX_MARKS, _anchors, marked_segments
from pytest_skills.report.records import ItemRecord, call_result, from_properties, to_properties
from tests.browser import Browser, Page
from tests.conftest import HAIKU, SKILL_MD, write_skill
from tests.loopback import LoopbackServer
from tests.report_run import (
    GPT,
    HOSTILE,
    HOSTILE_FILE,
    JUDGE_REASONING,
    MODELS,
    OUTCOMES,
    options,
    respond,
    run_project,
    write_project,
)

#: 2026-01-01T00:00:00Z: both runs of a comparison print the same date.
EPOCH = "1767225600"
NO_CHROMIUM = "no Chromium on PATH (Debian: apt-get install chromium)"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_project(tmp_path_factory.mktemp("report-run"), EPOCH)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if Browser.executable() is None:
        pytest.skip(NO_CHROMIUM)
    with Browser.launch(tmp_path_factory.mktemp("chromium-profile")) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, run_dir: Path) -> Page:
    return browser.open((run_dir / "report.html").as_uri())


def visible_cases(page: Page) -> list[str]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('details.case'))"
        ".filter((c) => c.checkVisibility()).map((c) => c.querySelector('.case-id').textContent)"
    )


def visible_results(page: Page) -> list[tuple[str, str]]:
    pairs = page.evaluate(
        "Array.from(document.querySelectorAll('details.case'))"
        ".filter((c) => !c.hidden).flatMap((c) => Array.from(c.querySelectorAll('.result'))"
        ".filter((r) => !r.hidden).map((r) => [c.querySelector('.case-id').textContent,"
        " r.dataset.model]))"
    )
    return [tuple(pair) for pair in pairs]


def select(page: Page, control: str, value: str) -> None:
    page.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(control)});"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )


# --- in the browser ------------------------------------------------------------------------


def test_the_page_renders_without_console_errors_or_any_load(page: Page) -> None:
    assert page.evaluate("document.title").startswith("Skill report")
    assert page.evaluate("document.querySelectorAll('details.case').length") == 5
    assert page.evaluate("document.getElementById('shown-count').textContent") == "5 of 5 cases"
    # Self-contained: the page asked for nothing (no CDN, no font, no image).
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0
    assert page.console_errors == []


def test_the_forest_plot_has_one_row_per_model_with_the_reports_verdict(
    page: Page, run_dir: Path
) -> None:
    rows = page.evaluate(
        "Array.from(document.querySelectorAll('.forest-row')).map((g) => [g.dataset.model,"
        " g.querySelector('.value').textContent, g.querySelectorAll('circle').length,"
        " g.checkVisibility()])"
    )
    assert [row[0] for row in rows] == list(MODELS)
    report = json.loads((run_dir / "report.json").read_text())
    for (model, text, points, shown), figures in zip(rows, report["models"], strict=True):
        assert figures["model"] == model
        assert text.endswith("· " + figures["verdict"])  # one vocabulary everywhere
        assert text.startswith(f"{figures['lift'] * 100:+.0f} pp")
        assert points == 1 and shown
    # The skill helps haiku, but 5 cases cannot make that conclusive: the exact test's
    # smallest p-value with 5 cases is 2 / 2^5 > 0.05 (docs/statistics.md).
    assert report["models"][0]["lift"] > 0 and report["models"][0]["verdict"] == "inconclusive"
    assert report["models"][1]["lift"] == 0  # ... and does nothing for the other model
    # The zero line sits in the middle of the axis, the haiku point to its right.
    zero = page.evaluate("+document.querySelector('.forest .zero').getAttribute('x1')")
    haiku_point = page.evaluate("+document.querySelector('.forest-row circle').getAttribute('cx')")
    assert haiku_point > zero


def test_filters_hide_what_they_should(page: Page) -> None:
    page.click(".outcome-button[data-outcome=flipped]")
    assert visible_cases(page) == ["fixed", "judged", "other-fixed"]
    assert {model for _, model in visible_results(page)} == {HAIKU}
    assert page.evaluate("document.getElementById('shown-count').textContent") == "3 of 5 cases"

    select(page, "filter-model", GPT)  # the skill flips nothing on the other model
    assert visible_cases(page) == []
    assert page.evaluate("document.querySelector('section.skill').checkVisibility()") is False

    page.click(".outcome-button[data-outcome=both-fail]")
    expected = [case for (case, model), outcome in OUTCOMES.items() if model == GPT]
    expected = [case for case in expected if OUTCOMES[(case, GPT)] == "both-fail"]
    assert sorted(visible_cases(page)) == sorted(expected)
    assert {model for _, model in visible_results(page)} == {GPT}

    select(page, "filter-model", "")
    page.click(".outcome-button[data-outcome=all]")
    page.type("#filter-text", "HOSTILE question")  # case-insensitive, the input's text
    assert visible_cases(page) == ["hostile"]
    page.evaluate(
        "(() => { const t = document.getElementById('filter-text'); t.value = '';"
        " t.dispatchEvent(new Event('input')); })()"
    )
    select(page, "filter-skill", "other")
    assert visible_cases(page) == ["other-fixed"]
    assert page.console_errors == []


def test_every_outcome_badge_matches_the_run(page: Page) -> None:
    shown = page.evaluate(
        "Array.from(document.querySelectorAll('.result')).map((r) =>"
        " [r.closest('details.case').querySelector('.case-id').textContent, r.dataset.model,"
        " r.dataset.outcome])"
    )
    assert {(case, model): outcome for case, model, outcome in shown} == OUTCOMES


def test_a_hostile_answer_shows_as_text(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.scripts.length") == 1  # the page's own
    assert page.evaluate("document.images.length") == 0
    answers = page.evaluate(
        "Array.from(document.querySelectorAll('#case-hostile pre.answer'))"
        ".map((p) => p.textContent)"
    )
    # Two models x two conditions x two trials, each the hostile text verbatim.
    assert answers == [HOSTILE] * 8
    assert (
        page.evaluate("document.querySelector('#case-hostile .context-file pre').textContent")
        == HOSTILE_FILE
    )
    assert page.console_errors == []


def test_a_link_opens_its_case_with_both_answers_and_the_judges_reasoning(
    browser: Browser, run_dir: Path
) -> None:
    page = browser.open((run_dir / "report.html").as_uri() + "#case-judged")
    assert page.evaluate("document.getElementById('case-judged').open") is True
    assert page.evaluate("document.getElementById('case-fixed').open") is False
    haiku = f"#case-judged .result[data-model='{HAIKU}']"
    columns = page.evaluate(
        f'Array.from(document.querySelectorAll("{haiku} .condition"))'
        ".map((c) => [c.querySelector('h5').textContent, c.querySelector('pre.answer')"
        ".textContent, c.querySelector('.check .actual pre').textContent,"
        " c.querySelectorAll('.trials .trial').length])"
    )
    (with_skill, baseline) = columns
    assert with_skill[0].startswith("with the skill") and baseline[0].startswith("baseline")
    assert "skill: # Skill: demo" in with_skill[1] and "skill:" not in baseline[1]
    assert JUDGE_REASONING in with_skill[2]
    assert with_skill[3] == baseline[3] == 2  # trial by trial
    # The failed check is the highlighted one.
    failed = page.evaluate(
        f'Array.from(document.querySelectorAll("{haiku} .check.failed"))'
        ".map((c) => c.closest('.condition').classList.contains('baseline'))"
    )
    assert failed and all(failed)
    # Following a link to another case opens that one too.
    page.navigate((run_dir / "report.html").as_uri() + "#case-fixed")
    assert page.evaluate("document.getElementById('case-fixed').open") is True
    assert page.console_errors == []


# --- the markup ----------------------------------------------------------------------------


def _blocks(page_text: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", page_text, flags=re.DOTALL)


def test_the_policy_admits_exactly_the_pages_own_style_and_script(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    assert policy is not None
    content = html.unescape(policy.group(1))
    directives = dict(part.strip().split(" ", 1) for part in content.split(";"))
    assert directives["default-src"] == "'none'"
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        (block,) = _blocks(text, tag)
        digest = base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode()
        assert directives[directive] == f"'sha256-{digest}'"
    assert "http://" not in text and "https://" not in text


def test_untrusted_text_is_escaped_in_the_markup(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert HOSTILE not in text and "window.__pwned = 1</script>" not in text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;/textarea&gt;" in text
    assert text.count("<script>") == 1


# --- xdist, paths, ini ------------------------------------------------------------------------


def test_the_page_and_the_workspace_are_identical_under_n0_and_n2(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("xdist")
    provider_env.responder = respond
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    write_project(pytester.path)
    cache = f"--skill-cache-dir={tmp_path / 'cache'}"
    recorded = pytester.runpytest(*options(cache, f"--skill-html={tmp_path / 'live.html'}"))
    recorded.assert_outcomes(passed=5, failed=5)
    calls = len(provider_env.calls)

    serial, parallel = tmp_path / "n0.html", tmp_path / "n2.html"
    replay = ("--skill-cache=replay", cache)
    pytester.runpytest(
        *options(*replay, "-n", "0", f"--skill-html={serial}", f"--skill-workspace={tmp_path}/w0")
    )
    pytester.runpytest_subprocess(
        *options(*replay, "-n", "2", f"--skill-html={parallel}", f"--skill-workspace={tmp_path}/w2")
    )
    assert len(provider_env.calls) == calls  # both replayed
    one, two = serial.read_bytes(), parallel.read_bytes()
    assert one == two
    # The workspace too, file for file.
    trees = [
        {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        for root in (tmp_path / "w0", tmp_path / "w2")
    ]
    assert len(trees[0]) > 100 and trees[0] == trees[1]
    assert b"replayed from the cache" in one
    assert b"replayed from the cache" not in (tmp_path / "live.html").read_bytes()


def test_an_unwritable_path_is_a_one_line_error(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_project(pytester.path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
        "-k", "plain", f"--skill-html={blocker / 'report.html'}",
    )  # fmt: skip
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines([f"skills: cannot write the report: *{blocker}*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_the_ini_path_is_relative_to_the_rootdir(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_project(pytester.path)
    pytester.makeini("[pytest]\nskill_html = reports/skills.html\n")
    (pytester.path / "elsewhere").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path / "elsewhere")
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
            "--rootdir", str(pytester.path), "-c", str(pytester.path / "tox.ini"),
            str(pytester.path / "demo"),
        )  # fmt: skip
    # The judge-only case skips without a judge model; the hostile case fails.
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    page = (pytester.path / "reports" / "skills.html").read_text(encoding="utf-8")
    assert 'id="case-fixed"' in page and 'id="case-other-fixed"' not in page


def live_page(pytester: pytest.Pytester, **outcomes: int) -> str:
    """Run the project in ``pytester`` live on haiku and return its HTML page."""
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
        "--skill-html=page.html",
    )  # fmt: skip
    result.assert_outcomes(**outcomes)
    return (pytester.path / "page.html").read_text(encoding="utf-8")


def test_a_run_without_models_still_writes_a_page(pytester: pytest.Pytester) -> None:
    write_project(pytester.path)
    result = pytester.runpytest("-p", "no:cacheprovider", "--skill-html=page.html")
    result.assert_outcomes(skipped=5)
    assert "This run has no skill results." in (pytester.path / "page.html").read_text()


def test_skill_model_tests_show_their_prompts_answers_and_checks(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    (pytester.path / "demo").mkdir()
    (pytester.path / "demo" / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    pytester.makepyfile(
        test_app="""
        import pytest

        @pytest.mark.skill("demo")
        def test_ask(skill_model):
            skill_model.ask("Name the topic", files={"notes.txt": "a note"}).check(
                {"contains": "skill: demo"}
            )
            skill_model.ask("Name the topic", files={"notes.txt": "a note"}, baseline=True)
        """
    )
    page = live_page(pytester, passed=1)
    assert 'id="case-test_ask"' in page
    assert "Name the topic\n\nFile `notes.txt`:\n```\na note\n```" in page
    # The with-skill answer's check ran on the baseline's answer too: the skill helped.
    assert page.count("contains &#39;skill: demo&#39;") == 2
    assert 'data-outcome="helped"' in page


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_an_expected_failure_is_marked_as_one_in_the_page_and_the_report(
    pytester: pytest.Pytester, provider_env: LoopbackServer, workers: list[str]
) -> None:
    write_skill(
        pytester.path,
        "demo",
        """
        cases:
          - {id: known, input: a question, expect: {contains: never said}, xfail: not yet}
          - {id: ordinary, input: a question too, expect: {contains: never said}}
        """,
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
        "--skill-html=page.html", "--skill-report=report.json", *workers,
    )  # fmt: skip
    result.assert_outcomes(failed=1, xfailed=1)
    page = (pytester.path / "page.html").read_text(encoding="utf-8")
    assert page.count('class="expected-failure"') == 1
    assert "expected to fail: not yet" in page
    results = json.loads((pytester.path / "report.json").read_text())["results"]
    assert {(r["case"], r.get("xfail")) for r in results} == {
        ("known", "not yet"),
        ("ordinary", None),
    }


def test_what_the_checks_found_is_marked_in_the_answer_as_escaped_text(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    # The loopback echoes the input, so the answer holds "<b>": the not_contains fails on it.
    write_skill(
        pytester.path,
        "demo",
        """
        cases:
          - id: tagged
            input: say <b>hi</b>
            expect: {all: [{contains: "SAY"}, {not_contains: "<b>"}]}
        """,
    )
    page = live_page(pytester, failed=1)
    # Both conditions' answers: "say" found (kept as the answer wrote it), "<b>" failing.
    assert page.count('<mark class="mark-pass">say</mark>') == 2
    assert page.count('<mark class="mark-fail">&lt;b&gt;</mark>') == 2
    assert "<b>hi" not in page


def _check(passed: bool, *marks: str, children: tuple[CheckResult, ...] = ()) -> CheckResult:
    return CheckResult("k", passed, "expected", "actual", children=children, marks=marks)


def test_marks_ignore_case_prefer_longer_texts_and_let_a_failure_show_over_a_pass() -> None:
    answer = "Use SM_90a, not sm_80; sm_90a again"
    tree = _check(False, children=(_check(True, "sm_90", "sm_90a"), _check(False, "sm_80")))
    assert marked_segments(answer, [tree]) == (
        ("Use ", ""),
        ("SM_90a", "pass"),
        (", not ", ""),
        ("sm_80", "fail"),
        ("; ", ""),
        ("sm_90a", "pass"),
        (" again", ""),
    )
    overlapping = [_check(True, "abc"), _check(False, "bc")]
    assert marked_segments("xabcx", overlapping) == (
        ("x", ""),
        ("a", "pass"),
        ("bc", "fail"),
        ("x", ""),
    )
    assert marked_segments("plain", [_check(True)]) == (("plain", ""),)
    assert marked_segments("", [_check(True, "a")]) == ()


def test_a_one_letter_mark_is_capped_in_a_long_answer() -> None:
    segments = marked_segments("a" * 5000, [_check(True, "a")])
    assert sum(1 for _, mark in segments if mark) == 1  # adjacent marks merge into one run
    segments = marked_segments("a b " * 5000, [_check(True, "a")])
    assert sum(1 for _, mark in segments if mark) == MAX_MARKS
    assert "".join(text for text, _ in segments) == "a b " * 5000


# --- pieces -----------------------------------------------------------------------------------


def test_links_name_cases_by_id_and_tell_shared_ids_apart() -> None:
    keys = [
        ("alpha", "a/one.skill.yaml", "shared"),
        ("beta", "b/two.skill.yaml", "shared"),
        ("beta", "b/two.skill.yaml", "only here"),
        ("gamma", "c/x.skill.yaml", "twin"),
        ("gamma", "c/y.skill.yaml", "twin"),
    ]
    assert _anchors(keys) == {
        keys[0]: "case-alpha/shared",
        keys[1]: "case-beta/shared",
        keys[2]: "case-only-here",
        keys[3]: "case-c/x.skill.yaml::twin",
        keys[4]: "case-c/y.skill.yaml::twin",
    }


def test_records_carry_check_trees_inputs_and_files_through_xdist() -> None:
    tree = CheckResult(
        "all",
        False,
        "all of 2",
        "1 of 2 passed",
        (
            CheckResult(
                "contains", True, "contains 'a'", "all present", marks=("a", "sk-secret-9")
            ),
            CheckResult("judge", False, "the judge passes it", "FAIL; sk-secret-9 said no"),
        ),
    )
    result = call_result(
        condition="with_skill",
        trial=1,
        cache_key="k",
        response=Response(text="a", usage=Usage(1, 2), latency_s=0.1),
        error=None,
        passed=False,
        graded_by="check",
        redact=lambda text: text.replace("sk-secret-9", "[redacted]"),
        checks=[tree],
    )
    record = ItemRecord(
        nodeid="f.skill.yaml::c[m]",
        skill="s",
        case="c",
        file="f.skill.yaml",
        model="m",
        resolved="openai:m",
        results=(result,),
        input="the question",
        context_files=(("notes.txt", "some notes"),),
    )
    back = from_properties(to_properties(record))
    assert back == record
    assert back is not None
    assert back.results[0].checks[0].children[1].actual == "FAIL; [redacted] said no"
    assert back.results[0].checks[0].children[0].marks == ("a", "[redacted]")
    assert back.context_files == (("notes.txt", "some notes"),)


def test_a_case_whose_trials_disagree_is_labelled_flaky_with_its_pass_k() -> None:
    from datetime import datetime, timezone

    from pytest_skills.report.html import render
    from pytest_skills.report.run_info import RunInfo
    from pytest_skills.report.summary import summarise
    from pytest_skills.settings import Settings

    def answers(condition: str, verdicts: list[bool]) -> tuple:
        return tuple(
            call_result(
                condition=condition,
                trial=trial,
                cache_key=f"{condition}{trial}",
                response=Response(text="x", usage=Usage(1, 1)),
                error=None,
                passed=passed,
                graded_by="check",
                redact=str,
            )
            for trial, passed in enumerate(verdicts)
        )

    record = ItemRecord(
        nodeid="f.skill.yaml::c[m]", skill="s", case="c", file="f.skill.yaml", model="m",
        resolved="openai:m",
        results=answers("with_skill", [True, False, True]) + answers("baseline", [False] * 3),
    )  # fmt: skip
    info = RunInfo(
        models=(("m", "openai:m"),), judge=None, cache_mode="auto", cache_mode_reason="default",
        trials=3, pass_threshold=0.5, baseline=True,
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc), plugin_version="0",
    )  # fmt: skip
    models = summarise([record], Settings(trials=3, pass_threshold=0.5))
    page = render(models, [record], info)
    # pass^3 of 2 passes in 3 trials: no three trials all pass (the unbiased estimate,
    # report/flakiness.py); the baseline's trials agree: no label there.
    assert page.count(">flaky · pass^k 0.00</span>") == 1
