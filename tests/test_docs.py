"""The documentation site builds without warnings and lists every registered model."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

import cervattn


@pytest.mark.parametrize("name", cervattn.list_models())
def test_models_page_lists_every_architecture(name):
    assert f"| {name} |" in (REPO / "docs" / "models.md").read_text()


def test_tagged_names_in_the_docs_exist():
    """Every ``arch.tag`` the README, docs and examples pass to create_model / timm / the CLI is a real tag."""
    import re

    import timm

    known = set(cervattn.list_pretrained()) | set(timm.list_pretrained())
    pattern = re.compile(r"(?:create_model\(\s*[\"']|--model |hf-hub:cervattn/)([a-z][a-z0-9_]*\.[a-z0-9_]+)")
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples").glob("*.py"))]
    found = {(f.name, name) for f in files for name in pattern.findall(f.read_text())}
    assert found, "the pattern found no tagged names at all"
    unknown = sorted((f, n) for f, n in found if n not in known)
    assert not unknown, f"tags that do not exist: {unknown}"


def test_models_page_lists_every_release_with_its_metrics():
    from cervattn.commands.models import releases_table

    text = (REPO / "docs" / "models.md").read_text()
    header, rows = releases_table()
    assert rows
    for row in rows:
        assert "| " + " | ".join(row) + " |" in text, f"docs/models.md lacks: {row}; run `cervattn models --releases --markdown`"


def _help(command: str, monkeypatch) -> str:
    """``cervattn COMMAND --help`` as a 100-column terminal prints it."""
    import argparse

    from cervattn.cli import build_parser

    monkeypatch.setenv("COLUMNS", "100")
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help().strip()


def test_cli_page_shows_the_current_help_of_every_command(monkeypatch):
    """docs/cli.md holds each command's --help verbatim. After changing a command, regenerate with
    CERVATTN_REGEN_DOCS=1 python -m pytest tests/test_docs.py -k cli_page"""
    from cervattn.commands import COMMANDS

    path = REPO / "docs" / "cli.md"
    text = path.read_text()
    for command in COMMANDS:
        heading = f"## cervattn {command}\n\n```text\n"
        assert heading in text, f"docs/cli.md has no section for `cervattn {command}`"
        start = text.index(heading) + len(heading)
        end = text.index("\n```", start)
        current = _help(command, monkeypatch)
        if os.environ.get("CERVATTN_REGEN_DOCS") == "1":
            text = text[:start] + current + text[end:]
            path.write_text(text)
        assert text[start:end] == current, f"docs/cli.md is stale for `cervattn {command}` (see this test's docstring)"


def test_docs_build_strict(tmp_path):
    if shutil.which("mkdocs") is None and not (REPO / ".venv" / "bin" / "mkdocs").exists():
        pytest.skip('mkdocs is not installed: pip install -e ".[docs]"')
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
