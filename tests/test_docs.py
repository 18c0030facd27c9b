"""Docs that match the code: generated configuration reference, README commands."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_configuration_reference_is_current() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from gen_config_docs import render
    finally:
        sys.path.pop(0)
    current = (REPO / "docs" / "configuration.md").read_text()
    assert current == render(), "run: python scripts/gen_config_docs.py"


def test_readme_commands_exist() -> None:
    readme = (REPO / "README.md").read_text()
    for script in re.findall(r"^(scripts/\S+\.sh)", readme, flags=re.M):
        assert (REPO / script).is_file(), script
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    assert "kubeingest run examples/quickstart.yaml" in (REPO / "scripts/quickstart.sh").read_text()
    for link in re.findall(r"\]\(((?:docs|benchmarks)/[^)]+)\)", readme):
        assert (REPO / link).is_file(), link


def test_cli_help_lists_every_documented_command() -> None:
    out = subprocess.run([sys.executable, "-m", "kubeingest.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for cmd in ("run", "validate", "query", "operator", "embedder", "sink", "api"):
        assert cmd in out
