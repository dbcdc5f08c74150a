"""Re-make docs/report-overview.png: the README's picture of the --skill-html overview.

It replays the README's main job (example_skills on gemma3-270m, answers from the
committed cache, no model needed), writes the report, and photographs its overview in
headless Chromium (tests/browser.py). Run from the repository root:

    python docs/screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import Browser  # noqa: E402

TARGET = ROOT / "docs" / "report-overview.png"


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        page_path = Path(scratch) / "report.html"
        env = {**os.environ, "CI": "true", "PYTEST_ADDOPTS": "", "SOURCE_DATE_EPOCH": "1767225600"}
        env.pop("GITHUB_STEP_SUMMARY", None)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "example_skills",
                "--skill-model",
                "gemma3-270m",
                "-p",
                "no:cacheprovider",
                "-q",
                f"--skill-html={page_path}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-2000:], sep="\n")
            return run.returncode
        with Browser.launch(Path(scratch) / "profile") as browser:
            page = browser.open(page_path.as_uri(), width=1180, height=800)
            page.screenshot(TARGET, until="#filters")
            if page.console_errors:
                print("\n".join(page.console_errors))
                return 1
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
