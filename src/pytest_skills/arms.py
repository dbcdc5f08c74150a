"""Arms: the ways a case is asked. Each case runs on each model once per arm.

* ``skill``: the skill injected as the system prompt;
* ``baseline``: no skill;
* ``placebo``: neutral text of the skill's length under the same heading, so a lift
  over it is the skill's content and not the longer prompt;
* ``ref:GITREF``: the skill's files as they were at a git ref (read with ``git show``;
  the work tree is never touched);
* ``dir:PATH``: the skill directory at PATH (a candidate rewrite);
* ``on-demand``: the skill offered as agents load it: a catalog of skills and tools to
  load them (see :mod:`pytest_skills.ondemand`).

No pytest import: the settings parse ``--skill-arms``, the nodes ask :class:`ArmPrompts`
for each arm's system prompt.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_skills.errors import SkillsError
from pytest_skills.models.specs import did_you_mean

if TYPE_CHECKING:
    from pytest_skills.formats import Skill, Suite
    from pytest_skills.ondemand import Catalog, Catalogs


class ArmKind(Enum):
    SKILL = "skill"
    BASELINE = "baseline"
    PLACEBO = "placebo"
    REF = "ref"
    DIR = "dir"
    ON_DEMAND = "on-demand"
    #: The skill arm asked again with other trial indices: an A/A control.
    AA = "aa"


class ArmError(SkillsError, ValueError):
    """An arm that cannot be written so; the message says what can."""


@dataclass(frozen=True)
class Arm:
    kind: ArmKind
    #: The git ref of ``ref:``, the path of ``dir:``.
    value: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind.value}:{self.value}" if self.value else self.kind.value

    @property
    def condition(self) -> str:
        """The record's name for the arm (``with_skill`` for ``skill``, as reports had it)."""
        return "with_skill" if self.kind is ArmKind.SKILL else self.name

    @property
    def trial_offset(self) -> int:
        """Added to the trial index: the A/A arm's answers are fresh samples, not the
        skill arm's recorded ones."""
        return AA_TRIAL_OFFSET if self.kind is ArmKind.AA else 0

    @property
    def version(self) -> bool:
        """Another version of the skill: what ``--skill-fail-on-regression`` compares."""
        return self.kind in (ArmKind.REF, ArmKind.DIR)


#: Far above any trial count a run asks for.
AA_TRIAL_OFFSET = 100_000

SKILL = Arm(ArmKind.SKILL)
AA = Arm(ArmKind.AA)
BASELINE = Arm(ArmKind.BASELINE)
ON_DEMAND = Arm(ArmKind.ON_DEMAND)
DEFAULT_ARMS = (SKILL, BASELINE)
_SIMPLE = {
    kind.value: kind
    for kind in (
        ArmKind.SKILL,
        ArmKind.BASELINE,
        ArmKind.PLACEBO,
        ArmKind.AA,
        ArmKind.ON_DEMAND,
    )
}


def parse_arms(text: str) -> tuple[Arm, ...]:
    """``skill,baseline,ref:main`` as arms, in order, each once."""
    arms: list[Arm] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        head, colon, value = part.partition(":")
        if not colon and head in _SIMPLE:
            arm = Arm(_SIMPLE[head])
        elif colon and head in ("ref", "dir") and value.strip():
            arm = Arm(ArmKind(head), value.strip())
        else:
            known = [*_SIMPLE, "ref:GITREF", "dir:PATH"]
            raise ArmError(
                f"unknown arm {part!r}{did_you_mean(head, known)}: use {', '.join(known)}"
            )
        if arm not in arms:
            arms.append(arm)
    if not arms:
        raise ArmError("name at least one arm, e.g. skill,baseline")
    return tuple(arms)


def condition_arm(condition: str) -> str:
    """The arm name of a record's condition (``with_skill`` is the ``skill`` arm)."""
    return ArmKind.SKILL.value if condition == "with_skill" else condition


# --- placebo ---------------------------------------------------------------------------------

#: Neutral text on a subject no skill test asks about, cycled to the skill's length.
PLACEBO_SENTENCES = (
    "Lighthouses were built along rocky coasts to warn ships at night.",
    "Early towers burned wood or coal in open braziers at the top.",
    "Later keepers trimmed oil lamps and wound clockwork that turned the lens.",
    "A Fresnel lens gathers light from one lamp into a narrow, bright beam.",
    "Each light has its own pattern of flashes so sailors can tell them apart.",
    "Fog signals such as bells, horns and sirens helped when the beam could not be seen.",
    "Many keepers lived with their families on small islands for months at a time.",
    "Today most lights are automatic and are looked after by visiting engineers.",
)

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """A model-independent token count: words and punctuation marks. Close enough to a
    tokenizer's count for two English texts to be compared by length."""
    return len(_TOKEN.findall(text))


def placebo_body(tokens: int) -> str:
    """Neutral text of ``tokens`` tokens (by :func:`count_tokens`)."""
    words: list[str] = []
    count = 0
    index = 0
    while count < tokens:
        sentence = PLACEBO_SENTENCES[index % len(PLACEBO_SENTENCES)]
        for piece in _TOKEN.findall(sentence):
            if count >= tokens:
                break
            words.append(piece)
            count += 1
        index += 1
    text = " ".join(words)
    return re.sub(r" ([.,])", r"\1", text)


def placebo(skill: Skill) -> Skill:
    """The skill's placebo: same name and heading, neutral body of the same length."""
    from pytest_skills.formats import Skill

    return Skill(skill.name, skill.description, placebo_body(count_tokens(skill.body)), skill.path)


# --- versions ------------------------------------------------------------------------------


class GitError(SkillsError):
    pass


@dataclass(eq=False)
class GitVersions:
    """Files as they were at git refs, read with ``git show`` (nothing is checked out)."""

    root: Path

    def __post_init__(self) -> None:
        self._commits: dict[str, str | GitError] = {}
        self._top: Path | GitError | None = None

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=self.root, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise GitError(f"git could not run: {error}") from None
        if done.returncode != 0:
            raise GitError(
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "git failed"
            )
        return done.stdout

    def toplevel(self) -> Path:
        if self._top is None:
            try:
                self._top = Path(self._git("rev-parse", "--show-toplevel").strip())
            except GitError as error:
                self._top = GitError(f"{self.root} is not in a git repository ({error})")
        if isinstance(self._top, GitError):
            raise self._top
        return self._top

    def commit(self, ref: str) -> str:
        """The commit ``ref`` names; GitError when it names none."""
        if ref not in self._commits:
            try:
                self.toplevel()
                self._commits[ref] = self._git(
                    "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"
                ).strip()
            except GitError as error:
                reason = (
                    str(error) if "git repository" in str(error) else f"unknown git ref {ref!r}"
                )
                self._commits[ref] = GitError(reason)
        found = self._commits[ref]
        if isinstance(found, GitError):
            raise found
        return found

    def show(self, ref: str, path: Path) -> str | None:
        """The text of ``path`` at ``ref``; None when the file did not exist there."""
        commit = self.commit(ref)
        relative = path.resolve().relative_to(self.toplevel().resolve()).as_posix()
        try:
            return self._git("show", f"{commit}:{relative}")
        except GitError:
            return None


# --- each arm's system prompt ---------------------------------------------------------------


@dataclass(frozen=True)
class Unavailable:
    """Why an arm cannot be asked for a suite (its calls are not made)."""

    reason: str


@dataclass(eq=False)
class ArmPrompts:
    """The system prompt each arm sends for a suite's cases."""

    root: Path
    #: The on-demand arm's catalog narrowed to these skills (``--skill-catalog``).
    catalog_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.git = GitVersions(self.root)
        self._catalogs: Catalogs | None = None

    @property
    def catalogs(self) -> Catalogs:
        """The skills in scope of the on-demand arm, found when it first needs them."""
        if self._catalogs is None:
            from pytest_skills.ondemand import Catalogs

            self._catalogs = Catalogs(self.root, self.catalog_names)
        return self._catalogs

    def catalog(self, suite: Suite) -> Catalog:
        """The on-demand arm's catalog for ``suite``: its skills and the others in scope."""
        return self.catalogs.for_skills(suite.skills)

    def problems(self, arms: Iterable[Arm]) -> list[str]:
        """What stops an arm for every suite, said once at start-up."""
        lines = []
        for arm in arms:
            if arm.kind is ArmKind.REF:
                try:
                    self.git.commit(arm.value)
                except GitError as error:
                    lines.append(f"{arm.name}: {error}; its answers are not asked for")
            elif arm.kind is ArmKind.DIR and not (self._dir(arm) / "SKILL.md").is_file():
                lines.append(
                    f"{arm.name}: no SKILL.md in {self._dir(arm)}; its answers are not asked for"
                )
        return lines

    def system(self, arm: Arm, suite: Suite) -> str | Unavailable | None:
        if arm.kind is ArmKind.BASELINE:
            return None
        if arm.kind in (ArmKind.SKILL, ArmKind.AA):
            return suite.system_prompt
        if arm.kind is ArmKind.PLACEBO:
            return _blocks(placebo(skill) for skill in suite.skills)
        if arm.kind is ArmKind.REF:
            return self._at_ref(arm, suite)
        if arm.kind is ArmKind.DIR:
            return self._in_dir(arm, suite)
        return self.catalog(suite).system

    def _at_ref(self, arm: Arm, suite: Suite) -> str | Unavailable:
        from pytest_skills.formats import parse_skill

        skills = []
        for skill in suite.skills:
            try:
                text = self.git.show(arm.value, skill.path)
            except GitError as error:
                return Unavailable(f"{arm.name}: {error}")
            except ValueError:
                return Unavailable(f"{arm.name}: {skill.path} is outside the git repository")
            if text is None:
                return Unavailable(f"skill {skill.name} did not exist at {arm.value} (a new skill)")
            skills.append(parse_skill(text, skill.path))
        return _blocks(skills)

    def _dir(self, arm: Arm) -> Path:
        path = Path(arm.value)
        return path if path.is_absolute() else self.root / path

    def _in_dir(self, arm: Arm, suite: Suite) -> str | Unavailable:
        from pytest_skills.formats import FormatError, parse_skill

        target = self._dir(arm) / "SKILL.md"
        try:
            candidate = parse_skill(target.read_text(encoding="utf-8-sig"), target)
        except (OSError, UnicodeDecodeError, FormatError) as error:
            return Unavailable(f"{arm.name}: cannot read {target}: {error}")
        names = [skill.name for skill in suite.skills]
        if candidate.name not in names and len(names) > 1:
            return Unavailable(f"{arm.name}: {candidate.name!r} is none of {', '.join(names)}")
        replaced = [
            candidate if skill.name == candidate.name or len(names) == 1 else skill
            for skill in suite.skills
        ]
        return _blocks(replaced)


def _blocks(skills: Iterable[Skill]) -> str:
    return "\n".join(skill.block for skill in skills)
