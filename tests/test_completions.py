"""Shell completions: committed scripts match the app, and completing is fast and light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).parent.parent / "completions"


@pytest.mark.parametrize(
    ("shell", "file"),
    [("bash", "mediafind.bash"), ("zsh", "_mediafind"), ("fish", "mediafind.fish")],
)
def test_committed_completion_scripts_are_current(shell: str, file: str):
    generated = subprocess.run(
        [sys.executable, "-m", "mediafind"],
        env={**os.environ, "_MEDIAFIND_COMPLETE": f"source_{shell}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert generated == (COMPLETIONS / file).read_text(), (
        f"completions/{file} is out of date: run ./scripts/completions"
    )


def test_completing_answers_without_heavy_imports():
    code = (
        "import sys\n"
        "from mediafind.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'open_clip', 'av', 'numpy', 'transformers')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **os.environ,
            "_MEDIAFIND_COMPLETE": "complete_bash",
            "COMP_WORDS": "mediafind sea",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["search"]
    assert "HEAVY []" in result.stderr
