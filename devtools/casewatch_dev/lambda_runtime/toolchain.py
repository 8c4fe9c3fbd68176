"""What the emulated Lambda runtime is made of, found or built on this machine (no Docker), cached.

- **The emulator**: `aws-lambda-rie-<arch>`, the Lambda Runtime Interface Emulator that ships inside the
  aws-sam-cli wheel (`samcli/local/rapid/`), from the SAM tool environment `make tools` installs into
  `.tools/sam` (aws-sam-cli pins an older boto3 than uv.lock, so it never goes into `.venv`).
  `CASEWATCH_RIE=/path/to/aws-lambda-rie` uses another copy.
- **The runtime's Python**: 3.13 as in AWS (`CASEWATCH_RUNTIME_PYTHON`, else a python3.13 on PATH, in
  pyenv or known to uv); without one, the dev interpreter, with a warning.
- **What the runtime provides** beside the function (AWS's `/var/lang` and `/var/runtime`): the runtime
  interface client `awslambdaric` and boto3, at the versions uv.lock pins for the `lambda-runtime`
  dependency group, in a virtual environment of that Python (`.build/rie/runtime-<key>`), never in the
  function's asset.
- **The layer, for this host**: the synthesized layer holds manylinux aarch64 wheels for CPython 3.13
  (pydantic-core is compiled), which cannot load on x86_64. The same `name==version` set, read from the
  synthesized layer's `*.dist-info`, is installed for this host's platform and the runtime's Python into
  `.build/rie/layer-<key>/python` (the key hashes the set, the platform and the Python: a changed lock
  builds a new one, an unchanged one is reused). On an arm64 host running 3.13 the synthesized layer
  directory is used as it is.

Building needs the package index once (like the layer's own bundling); later runs are offline.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from casewatch_dev.event_files import UsageError

REPO_ROOT = Path(__file__).resolve().parents[3]  # a casewatch checkout: infra/, functions/, uv.lock
CACHE = REPO_ROOT / ".build" / "rie"  # beside the layer's own cache (.build/layer-<hash>)
SAM_ENV = REPO_ROOT / ".tools" / "sam"
RUNTIME_GROUP = "lambda-runtime"  # the uv.lock dependency group of what the runtime provides
ENV_RIE = "CASEWATCH_RIE"
ENV_RUNTIME_PYTHON = "CASEWATCH_RUNTIME_PYTHON"
_RIE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class ToolchainError(UsageError):
    """Something the emulated runtime needs is missing here (exit 2, with what to do)."""


@dataclass(frozen=True, slots=True)
class Emulator:
    binary: Path
    origin: str  # e.g. "aws-sam-cli 1.170.0"


@dataclass(frozen=True, slots=True)
class RuntimePython:
    executable: Path  # the runtime environment's interpreter
    version: str  # e.g. "3.13.0"
    expected: bool  # the version AWS runs (the template's Runtime)
    packages: dict[str, str]  # what the runtime provides: name -> version (awslambdaric, boto3, ...)


def host_arch() -> str:
    """The Lambda architecture name of this machine (`x86_64` or `arm64`)."""
    machine = platform.machine().lower()
    if machine not in _RIE_ARCH:
        raise ToolchainError(f"no Lambda Runtime Interface Emulator for this machine ({machine})")
    return _RIE_ARCH[machine]


def find_emulator() -> Emulator:
    """The RIE binary for this machine: `CASEWATCH_RIE`, else the SAM tool environment's."""
    override = os.environ.get(ENV_RIE)
    if override:
        if not os.access(override, os.X_OK):
            raise ToolchainError(f"{ENV_RIE}={override}: not an executable file")
        return Emulator(Path(override), ENV_RIE)
    name = f"aws-lambda-rie-{host_arch()}"
    found = sorted(SAM_ENV.glob(f"lib/python3*/site-packages/samcli/local/rapid/{name}"))
    if not found:
        raise ToolchainError(
            f"the Lambda Runtime Interface Emulator ({name}) comes with the AWS SAM CLI: run `make tools` "
            f"(installs aws-sam-cli into {SAM_ENV.relative_to(REPO_ROOT)}), or set {ENV_RIE}"
        )
    binary = found[-1]
    site = binary.parents[3]
    versions = sorted(
        p.name.removesuffix(".dist-info").split("-")[1] for p in site.glob("aws_sam_cli-*.dist-info")
    )
    return Emulator(binary, f"aws-sam-cli {versions[-1]}" if versions else "aws-sam-cli")


# -- the runtime's Python -------------------------------------------------------------------------
def _probe(executable: str) -> str | None:
    """`major.minor.micro` of an interpreter that runs, else None (e.g. a pyenv shim of another version)."""
    try:
        result = subprocess.run(  # noqa: S603 - a local interpreter, no shell
            [executable, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _candidates(version: str) -> Iterator[str]:
    override = os.environ.get(ENV_RUNTIME_PYTHON)
    if override:
        yield override
        return
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for prefix in sorted(pyenv_root.glob(f"versions/{version}.*"), reverse=True):
        yield str(prefix / "bin" / f"python{version}")
    on_path = shutil.which(f"python{version}")  # may be a pyenv shim of a version not selected: probed
    if on_path:
        yield on_path
    uv = _uv()
    found = subprocess.run(  # noqa: S603 - uv, no shell
        [uv, "python", "find", "--no-project", version], capture_output=True, text=True, check=False
    )
    if found.returncode == 0 and found.stdout.strip():
        yield found.stdout.strip()


def find_python(version: str) -> tuple[Path, str, bool]:
    """(interpreter, its version, whether it is `version`): the Python the emulated runtime runs."""
    for candidate in _candidates(version):
        found = _probe(candidate)
        if found is not None and (os.environ.get(ENV_RUNTIME_PYTHON) or found.startswith(f"{version}.")):
            return Path(candidate), found, found.startswith(f"{version}.")
    if os.environ.get(ENV_RUNTIME_PYTHON):
        raise ToolchainError(f"{ENV_RUNTIME_PYTHON}={os.environ[ENV_RUNTIME_PYTHON]}: does not run")
    base = getattr(sys, "_base_executable", sys.executable)
    return Path(base), ".".join(map(str, sys.version_info[:3])), False


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise ToolchainError("uv is needed to build the emulated runtime: run `make install`")
    return found


def _run(command: Sequence[str], what: str) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run(  # noqa: S603 - uv with arguments we build, no shell
        list(command), capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False
    )
    if result.returncode != 0:
        raise ToolchainError(
            f"{what} failed (needs the package index the first time; later runs use {CACHE}):\n"
            f"$ {' '.join(command)}\n{result.stderr.strip()}"
        )
    return result.stdout


@contextlib.contextmanager
def _building() -> Iterator[None]:
    """One builder at a time (tests and a CLI may start together); the others wait, then reuse."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def runtime_environment(aws_version: str) -> RuntimePython:
    """A virtual environment of the runtime's Python (`aws_version`, e.g. 3.13, where this machine has it)
    holding what the Lambda runtime provides."""
    interpreter, version, expected = find_python(aws_version)
    if not expected:
        print(
            f"casewatch: no Python {aws_version} found (set {ENV_RUNTIME_PYTHON}); the emulated runtime "
            f"runs Python {version}, AWS runs {aws_version}",
            file=sys.stderr,
        )
    uv = _uv()
    requirements = _run(
        [uv, "export", "--frozen", "--only-group", RUNTIME_GROUP, "--no-emit-project", "--no-header"],
        f"reading the {RUNTIME_GROUP} group of uv.lock",
    )
    home = CACHE / f"runtime-{_key(requirements, version, platform.machine())}"
    python = home / "bin" / "python"
    stamp = home / ".casewatch-runtime.json"
    with _building():
        if not stamp.is_file():
            shutil.rmtree(home, ignore_errors=True)
            _run([uv, "venv", "--quiet", "--python", str(interpreter), str(home)], "creating the runtime env")
            (home / "requirements.txt").write_text(requirements)
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--no-config",
                    "--compile-bytecode",  # the Lambda runtime's own packages come compiled
                    "--python",
                    str(python),
                    "-r",
                    str(home / "requirements.txt"),
                ],
                "installing awslambdaric and boto3 for the emulated runtime",
            )
            stamp.write_text(json.dumps({"python": version, "packages": _pins(requirements)}))
    recorded = json.loads(stamp.read_text())
    return RuntimePython(python, version, expected, dict(recorded["packages"]))


def _pins(requirements: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in requirements.splitlines():
        spec = line.split(";")[0].split("\\")[0].strip()
        if "==" in spec and not spec.startswith("#"):
            name, version = spec.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


# -- the layer, for this host ---------------------------------------------------------------------
def layer_requirements(layer_dir: Path) -> list[str]:
    """`name==version` of every distribution in a synthesized layer (`<dir>/python/*.dist-info`)."""
    pins = []
    for info in sorted((layer_dir / "python").glob("*.dist-info")):
        fields: dict[str, str] = {}
        for line in (info / "METADATA").read_text(errors="replace").splitlines():
            if not line.strip():
                break  # the headers end at the first blank line
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        pins.append(f"{fields['Name']}=={fields['Version']}")
    if not pins:
        raise ToolchainError(f"{layer_dir}: no python/*.dist-info: not a synthesized dependencies layer")
    return pins


def host_layer(layer_dir: Path, runtime: RuntimePython) -> Path:
    """The layer content to mount as `/opt` here: the synthesized one where its wheels load (arm64 and the
    Python AWS runs), else the same distributions installed for this host (cached)."""
    if (host_arch() == "arm64" and runtime.expected) or not (layer_dir / "python").is_dir():
        return layer_dir  # loads here as it is (or holds no Python at all: the settings layer)
    requirements = layer_requirements(layer_dir)
    home = CACHE / f"layer-{_key(*requirements, platform.machine(), runtime.version)}"
    stamp = home / ".casewatch-layer"
    with _building():
        if not stamp.is_file():
            shutil.rmtree(home, ignore_errors=True)
            _run(
                [
                    _uv(),
                    "pip",
                    "install",
                    "--quiet",
                    "--no-config",
                    "--no-deps",
                    "--only-binary",
                    ":all:",
                    "--python",
                    str(runtime.executable),
                    "--target",
                    str(home / "python"),
                    *requirements,
                ],
                "installing the layer's distributions for this machine",
            )
            (home / "python" / ".lock").unlink(missing_ok=True)  # uv's lock of the target dir
            stamp.write_text("\n".join(requirements) + "\n")
    return home


__all__ = [
    "CACHE",
    "REPO_ROOT",
    "Emulator",
    "RuntimePython",
    "ToolchainError",
    "find_emulator",
    "find_python",
    "host_arch",
    "host_layer",
    "layer_requirements",
    "runtime_environment",
]
