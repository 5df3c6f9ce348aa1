"""`sam build` of the whole template, and each function's handler imports from its artifact alone.

The functions use `BuildMethod: makefile` (the Makefile's `build-%Function`); the build reuses the Lambda
dependency cache (LAMBDA_DEPS_CACHE, ~/.cache/wagate/lambda-deps) like a user's `sam build` does.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from infra.local.template import TEMPLATE_PATH, functions, load_template
from tests.conftest import ROOT

REGION = "us-east-1"
# The Lambda runtime unzips to 250 MB at most; today's artifact is ~54 MB.
MAX_ARTIFACT_BYTES = 100 * 1024 * 1024
# Our code an artifact carries: the domain core and the Lambda edge, never the host, tooling or tests.
OUR_PACKAGES = {"core", "functions"}
NOT_SHIPPED = {"browser_host", "infra", "tests", "bench", "docs", ".venv", ".venv-sam", ".git", "template.yaml"}


def _sam() -> Path:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if sam.exists():
        return sam
    found = shutil.which("sam")
    if found is None:
        pytest.skip("SAM CLI not installed: `make test` installs it into .venv-sam")
    return Path(found)


def _runtime_python(runtime: str) -> Path:
    """The interpreter of the functions' runtime (python3.12): the built wheels are for that version only."""
    version = runtime.removeprefix("python")
    candidates = sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"), reverse=True)
    found = shutil.which(f"python{version}")
    for candidate in [*candidates, *([Path(found)] if found else [])]:
        if subprocess.run([str(candidate), "-c", ""], capture_output=True).returncode == 0:
            return candidate
    pytest.skip(f"no {runtime} interpreter (pyenv install {version}) to import the built functions with")


def _build_env() -> dict[str, str]:
    # Not the outer make's job server or flags (`make test` runs pytest): SAM's make is a make of its own.
    outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    return {**{k: v for k, v in os.environ.items() if k not in outer},
            "AWS_DEFAULT_REGION": REGION, "SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(scope="module")
def template_functions() -> dict[str, dict[str, Any]]:
    return functions(load_template())


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The template built once for this module (`sam build --build-in-source` into a temporary folder)."""
    sam = _sam()
    work = tmp_path_factory.mktemp("sam-build")
    build = work / "build"
    # Serial on purpose: with a cold dependency cache, parallel builds would each install the wheels.
    result = subprocess.run(
        [str(sam), "build", "--build-in-source", "--template-file", str(TEMPLATE_PATH), "--build-dir", str(build)],
        capture_output=True, text=True, env=_build_env(), cwd=work, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    yield build
    shutil.rmtree(work, ignore_errors=True)


def _artifact_files(artifact: Path) -> Iterator[Path]:
    for folder, _dirs, files in os.walk(artifact):
        for name in files:
            yield Path(folder) / name


def test_every_function_of_the_template_has_an_artifact(
        build_dir: Path, template_functions: dict[str, dict[str, Any]]) -> None:
    # Given the whole template built, Then each function has a folder of its own with our code in it
    assert template_functions, "no AWS::Serverless::Function in template.yaml"
    for logical_id in template_functions:
        artifact = build_dir / logical_id
        assert all((artifact / package).is_dir() for package in OUR_PACKAGES), logical_id


def test_artifacts_are_readable_and_carry_no_tests_virtualenvs_or_bytecode(
        build_dir: Path, template_functions: dict[str, dict[str, Any]]) -> None:
    for logical_id in template_functions:
        artifact = build_dir / logical_id
        # Then only the core, the edge and the dependencies are at the top: not the host, tooling or tests
        top = {p.name for p in artifact.iterdir()}
        assert not top & NOT_SHIPPED, f"{logical_id} ships {sorted(top & NOT_SHIPPED)}"
        files = list(_artifact_files(artifact))
        bloat = [str(f.relative_to(artifact)) for f in files
                 if "__pycache__" in f.parts or f.suffix == ".pyc" or "tests" in f.relative_to(artifact).parts[:2]]
        assert bloat == [], f"{logical_id}: {bloat[:10]}"
        # Lambda runs the code as another user than the archive's owner: everything must be readable by all
        unreadable = [str(f.relative_to(artifact)) for f in files if f.stat().st_mode & 0o444 != 0o444]
        unreadable += [str(Path(d).relative_to(artifact)) for d, _, _ in os.walk(artifact)
                       if os.stat(d).st_mode & 0o555 != 0o555]
        assert unreadable == [], f"{logical_id}: {unreadable[:10]}"
        size = sum(f.stat().st_size for f in files)
        assert size < MAX_ARTIFACT_BYTES, f"{logical_id} is {size / 1e6:.1f} MB"


class TaskRoot:
    """A fixed path (Lambda's /var/task) that points at one artifact at a time, with bytecode kept outside it.

    The artifacts are the same files at different paths; reached through one path, the dependencies compile
    once rather than once per function. A module missing from the artifact still fails: Python looks for the
    source first, and only then for its cached bytecode.
    """

    def __init__(self, python: Path, folder: Path) -> None:
        self.python, self.link, self.bytecode = python, folder / "task", folder / "bytecode"
        folder.mkdir(parents=True, exist_ok=True)

    def import_handler(self, artifact: Path, handler: str, env: dict[str, str]) -> str | None:
        """None when `handler` imports from `artifact` and the standard library only, else what went wrong."""
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(artifact, target_is_directory=True)
        module, _, function = handler.rpartition(".")
        check = (f"import sys; sys.path.insert(0, {str(self.link)!r}); import importlib; "
                 f"assert callable(getattr(importlib.import_module({module!r}), {function!r}))")
        # -I: no PYTHON* variables, user site or current folder; -S: no site-packages
        result = subprocess.run([str(self.python), "-I", "-S", "-X", f"pycache_prefix={self.bytecode}", "-c", check],
                                capture_output=True, text=True, env=env, cwd=self.link.parent, timeout=120)
        return None if result.returncode == 0 else result.stderr[-3000:]


@functools.cache
def _parameters() -> dict[str, Any]:
    return dict(load_template().get("Parameters", {}))


def _lambda_env(props: dict[str, Any]) -> dict[str, str]:
    """The variables Lambda would set: the template's (parameters at their defaults, other references made up)."""
    parameters = _parameters()

    def value(name: str, declared: Any) -> str:
        if isinstance(declared, str):
            return declared
        default = parameters.get(declared.get("Ref", ""), {}).get("Default") if isinstance(declared, dict) else None
        return str(default) if default is not None else f"placeholder-{name.lower()}"

    env = {name: value(name, declared) for name, declared in props.get("Environment", {}).get("Variables", {}).items()}
    return {**env, "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "LANG": "C.UTF-8"}


def test_each_handler_imports_from_its_artifact_alone(
        build_dir: Path, template_functions: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    # Given the runtime's Python with no site-packages, and each function's artifact as its only path
    runtimes = {props["Runtime"] for props in template_functions.values()}
    assert len(runtimes) == 1, runtimes
    python = _runtime_python(runtimes.pop())
    lanes = max(2, os.cpu_count() or 2)
    roots = [TaskRoot(python, tmp_path / f"lane{i}") for i in range(lanes)]
    ids = sorted(template_functions)

    def run_lane(i: int) -> dict[str, str | None]:
        return {lid: roots[i].import_handler(build_dir / lid, template_functions[lid]["Handler"],
                                             _lambda_env(template_functions[lid])) for lid in ids[i::lanes]}

    # When each function's handler module is imported
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        results = {lid: error for lane in pool.map(run_lane, range(lanes)) for lid, error in lane.items()}
    # Then every one imports: the artifact holds every dependency the handler needs
    assert sorted(results) == ids
    errors = {lid: error for lid, error in results.items() if error is not None}
    assert errors == {}, "\n\n".join(f"{lid}:\n{error}" for lid, error in errors.items())


def test_a_missing_dependency_is_caught(build_dir: Path, template_functions: dict[str, dict[str, Any]],
                                        tmp_path: Path) -> None:
    # Given a copy of the API function's artifact without pydantic
    props = template_functions["ApiFunction"]
    artifact = tmp_path / "ApiFunction"
    shutil.copytree(build_dir / "ApiFunction", artifact, symlinks=True, copy_function=os.link,
                    ignore=shutil.ignore_patterns("pydantic", "pydantic-*.dist-info"))
    # When its handler is imported through a task root whose bytecode cache has seen the whole artifact
    root = TaskRoot(_runtime_python(props["Runtime"]), tmp_path / "lane")
    assert root.import_handler(build_dir / "ApiFunction", props["Handler"], _lambda_env(props)) is None
    error = root.import_handler(artifact, props["Handler"], _lambda_env(props))
    # Then it fails on the missing package
    assert error is not None and "No module named 'pydantic'" in error
