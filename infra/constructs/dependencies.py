"""casewatch's own dependencies layer, built without Docker.

The functions' third-party code (Powertools with the parser and tracer extras, pydantic, and the
AWS SDK) goes into one Lambda layer, so the function asset is only casewatch's own code. The layer
is built by CDK *local* bundling: `pip install --target` of the exact versions pinned in `uv.lock`
(so AWS runs what the tests ran), with `--platform manylinux2014_aarch64 --only-binary=:all:
--python-version 3.13`, so an x86 laptop builds arm64 wheels.

boto3 and botocore (with s3transfer, jmespath, python-dateutil, urllib3, six) are in the layer on
purpose: the Lambda runtime's copy is older than uv.lock's and changes without notice, and casewatch
needs botocore >= 1.44.5 (`autoIncludeFields` of PutCaseEventConfiguration, SearchAllRelatedItems).
The layer's `/opt/python` comes before the runtime's own packages on `sys.path`, so the functions
import the locked SDK. It costs about 15 MB zipped and a few tens of ms of cold start.

The output is cached in `.build/layer-<hash of the requirement list>`, so repeated synths (the
tests) do not run pip again; the first synth of a new lock needs PyPI. The bundling image is set
only because CDK requires one: local bundling succeeds whenever an installer is available, so
Docker never runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    ILocalBundling,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from packaging.markers import Marker

REPO_ROOT = Path(__file__).resolve().parents[2]
UV_LOCK = REPO_ROOT / "uv.lock"
BUILD_DIR = REPO_ROOT / ".build"

PYTHON_VERSION = "3.13"
PIP_PLATFORM = "manylinux2014_aarch64"  # pip's --platform
UV_PLATFORM = "aarch64-manylinux2014"  # the same target in uv's --python-platform spelling
BUNDLING_IMAGE = "public.ecr.aws/sam/build-python3.13"

# The project's runtime dependencies that the layer provides, with everything they need: the SDK
# too (the Lambda runtime's boto3/botocore is not the one casewatch was tested with).
LAYER_ROOTS: tuple[str, ...] = ("aws-lambda-powertools", "pydantic", "boto3")
# Packages never put into the layer, nor followed: none.
EXCLUDED: frozenset[str] = frozenset()

# The Lambda environment (python3.13, arm64) for evaluating lock-file markers.
TARGET_MARKER_ENV: dict[str, str] = {
    "python_version": PYTHON_VERSION,
    "python_full_version": f"{PYTHON_VERSION}.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}


class LockError(RuntimeError):
    """uv.lock does not hold what the layer needs."""


def _applies(dep: Mapping[str, Any]) -> bool:
    marker = dep.get("marker")
    return marker is None or Marker(marker).evaluate(TARGET_MARKER_ENV)


def locked_requirements(
    lock_file: Path = UV_LOCK,
    project: str = "casewatch",
    roots: Iterable[str] = LAYER_ROOTS,
    exclude: frozenset[str] = EXCLUDED,
) -> list[str]:
    """`name==version` for every package the layer needs, from the lock file, sorted.

    The transitive closure of the project's dependencies named in `roots` (with the extras the
    project asks for), for the Lambda target environment, minus `exclude`.
    """
    lock = tomllib.loads(lock_file.read_text())
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock.get("package", []):
        packages.setdefault(package["name"], []).append(package)

    def find(dep: Mapping[str, Any]) -> dict[str, Any]:
        candidates = packages.get(dep["name"], [])
        if "version" in dep:
            candidates = [p for p in candidates if p.get("version") == dep["version"]]
        if len(candidates) != 1:
            raise LockError(f"{lock_file.name}: cannot pick one locked version of {dep['name']!r}")
        return candidates[0]

    project_package = find({"name": project})
    wanted = set(roots)
    queue: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (find(dep), tuple(dep.get("extra", ())))
        for dep in project_package.get("dependencies", [])
        if dep["name"] in wanted and _applies(dep)
    ]
    if {p["name"] for p, _ in queue} != wanted:
        raise LockError(f"{lock_file.name}: {project} does not depend on all of {sorted(wanted)}")
    pins: dict[str, str] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while queue:
        package, extras = queue.pop()
        key = (package["name"], extras)
        if key in seen:
            continue
        seen.add(key)
        pins[package["name"]] = package["version"]
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps.extend(package.get("optional-dependencies", {}).get(extra, []))
        for dep in deps:
            if dep["name"] not in exclude and _applies(dep):
                queue.append((find(dep), tuple(dep.get("extra", ()))))
    return sorted(f"{name}=={version}" for name, version in pins.items())


def requirements_hash(requirements: Sequence[str]) -> str:
    """A short hash of what the layer holds and for which target (names the cache and the asset)."""
    payload = json.dumps(
        {"requirements": list(requirements), "platform": PIP_PLATFORM, "python": PYTHON_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _installer(requirements: Sequence[str], target: Path) -> list[str] | None:
    """The local install command: pip if this Python has it, else the uv next to it; None if neither."""
    common_pip = [
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        PIP_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--target",
        str(target),
    ]
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            *common_pip,
            *requirements,
        ]
    uv = Path(sys.executable).with_name("uv")
    uv_path = str(uv) if uv.exists() else shutil.which("uv")
    if uv_path:  # uv-created virtualenvs have no pip; `uv pip install` takes the same request
        return [
            uv_path,
            "pip",
            "install",
            "--quiet",
            "--no-config",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python-platform",
            UV_PLATFORM,
            "--python-version",
            PYTHON_VERSION,
            "--python",
            sys.executable,
            "--target",
            str(target),
            *requirements,
        ]
    return None


def build_layer_content(requirements: Sequence[str], cache_root: Path = BUILD_DIR) -> Path | None:
    """The layer content (`<dir>/python/...`), from the cache or installed now; None if no installer."""
    cached = cache_root / f"layer-{requirements_hash(requirements)}"
    if (cached / "python").is_dir():
        return cached
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{cached.name}.", dir=cache_root))
    try:
        command = _installer(requirements, staging / "python")
        if command is None:
            return None
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(
                "building the dependencies layer failed (needs PyPI access the first time; later synths "
                f"use {cached.relative_to(REPO_ROOT) if cached.is_relative_to(REPO_ROOT) else cached}):\n"
                f"$ {' '.join(command)}\n{result.stderr.strip()}"
            )
        (staging / "python" / ".lock").unlink(missing_ok=True)  # uv's lock of the target dir
        try:
            os.replace(staging, cached)  # atomic: a concurrent synth either sees all of it or nothing
        except OSError:
            if not (cached / "python").is_dir():
                raise
        return cached
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@jsii.implements(ILocalBundling)
class PipInstallLocally:
    """Local bundling: copy the cached (or freshly pip-installed) layer content into the asset."""

    def __init__(self, requirements: Sequence[str], cache_root: Path = BUILD_DIR) -> None:
        self.requirements = list(requirements)
        self.cache_root = cache_root

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        content = build_layer_content(self.requirements, self.cache_root)
        if content is None:
            return False  # neither pip nor uv here: let CDK bundle in Docker instead
        shutil.copytree(content, output_dir, dirs_exist_ok=True)
        return True


class DependenciesLayer(Construct):
    """A layer with casewatch's locked third-party dependencies for python3.13 on arm64."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        requirements: Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.requirements = list(requirements) if requirements is not None else locked_requirements()
        digest = requirements_hash(self.requirements)
        # The asset's source: the requirement list (what the Docker fallback installs from).
        source = BUILD_DIR / f"layer-src-{digest}"
        source.mkdir(parents=True, exist_ok=True)
        (source / "requirements.txt").write_text("\n".join(self.requirements) + "\n")
        docker_command = (
            "pip install --no-deps --only-binary=:all: --no-compile "
            f"--platform {PIP_PLATFORM} --implementation cp --python-version {PYTHON_VERSION} "
            "-r requirements.txt --target /asset-output/python"
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(
                str(source),
                asset_hash=digest,
                asset_hash_type=AssetHashType.CUSTOM,
                bundling=BundlingOptions(
                    image=DockerImage.from_registry(BUNDLING_IMAGE),
                    command=["bash", "-c", docker_command],
                    # jsii passes the options as one struct, so the class is not a structural match.
                    local=cast(ILocalBundling, PipInstallLocally(self.requirements)),
                ),
            ),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description=("casewatch dependencies: " + " ".join(self.requirements))[:256],
        )
