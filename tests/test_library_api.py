"""The library as the README shows it: its example runs as written."""

from __future__ import annotations

import contextlib
import inspect
import io
import re
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Using it as a library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README's library section has no Python example"
    return match.group(1)


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_clip: str):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("red", "green", "blue"):
        draw_photo(tmp_path / "Pictures" / f"{name}.jpg", COLORS[name])
    # No model can be downloaded here: the README's model becomes the tests'
    # tiny one, in the same kind of spec.
    code = re.sub(r'"ViT-B-32-256:datacomp_s34b_b86k"', repr(tiny_clip), readme_example())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert len(lines) == 3
    assert {Path(line.split(" ", 1)[1]).name for line in lines} == {
        "red.jpg",
        "green.jpg",
        "blue.jpg",
    }


def test_public_names_are_not_shadowed_by_submodules():
    import mediafind
    import mediafind.query
    from mediafind import index_paths, search

    assert callable(search) and callable(index_paths)
    assert mediafind.search is search
    for name in mediafind.__all__:
        assert not inspect.ismodule(getattr(mediafind, name)), name
