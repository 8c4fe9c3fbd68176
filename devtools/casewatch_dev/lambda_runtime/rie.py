"""One function in the Lambda Runtime Interface Emulator: the RIE process, its runtime, invocations.

The RIE (`aws-lambda-rie`) serves Lambda's invoke API on 127.0.0.1 and the Runtime API to its child,
`python -m awslambdaric HANDLER`, started in the function's code directory with Lambda's environment:
`LAMBDA_TASK_ROOT` (the code asset, AWS's /var/task), the layer's `python/` on the search path after
it (AWS's /opt/python), what the runtime provides after the standard library (the runtime environment's
site-packages), `_HANDLER`, `AWS_LAMBDA_FUNCTION_NAME`/`_MEMORY_SIZE`/`_TIMEOUT` and the function's own
variables. Like Lambda's read-only /var/task, nothing is compiled into the asset (`PYTHONDONTWRITEBYTECODE`).

The figures (`Report`). The RIE prints START/END/REPORT as Lambda does, but its REPORT counts the first
invocation's init into `Duration` and repeats `Memory Size` as `Max Memory Used` (it cannot measure
it). So the durations are taken from the emulator's own phase lines (`INIT REPORT(durationMs: ...)`,
`INVOKE RTDONE(... duration: ...ms)`), the memory is the runtime process's peak resident set (Linux
`VmHWM`, the closest local figure to Lambda's), and the raw REPORT line is kept beside them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from casewatch_dev.lambda_runtime.template import FunctionDefinition
from casewatch_dev.lambda_runtime.toolchain import Emulator, RuntimePython

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
READY_TIMEOUT_S = 15.0
REPORT_WAIT_S = 5.0
_REPORT = re.compile(r"^REPORT RequestId: (?P<id>\S+)\s+(?P<fields>.*)$")
_REPORT_FIELD = re.compile(r"(?P<name>[A-Za-z ]+): (?P<value>[\d.]+) (?:ms|MB)")
_INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: (?P<ms>[\d.]+)\)")
_INVOKE_DONE = re.compile(r"INVOKE RTDONE\(status: (?P<status>\w+).*duration: (?P<ms>[\d.]+)ms\)")
_RAPID = re.compile(r"^\d\d \w{3} \d{4} [\d:,]+ \[\w+\] \(rapid\)")


class RuntimeEmulatorError(RuntimeError):
    """The emulator or the runtime did not come up or answer."""


@dataclass(frozen=True, slots=True)
class Report:
    """What one invocation cost, as Lambda's REPORT line says it (see the module docstring)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int | None  # measured: peak RSS of the runtime process (None where unknown)
    init_duration_ms: float | None  # on a cold start
    line: str  # the RIE's REPORT line as printed

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "duration_ms": self.duration_ms,
            "billed_duration_ms": self.billed_duration_ms,
            "memory_size_mb": self.memory_size_mb,
            "max_memory_used_mb": self.max_memory_used_mb,
            "report": self.line,
        }
        if self.init_duration_ms is not None:
            found["init_duration_ms"] = self.init_duration_ms
        return found


@dataclass(frozen=True, slots=True)
class Response:
    """One invocation: the function's response (or error) and its report."""

    payload: Any
    error: dict[str, Any] | None  # {"errorType", "errorMessage", ...} when the function failed
    report: Report
    output: list[str] = field(default_factory=list)  # what the runtime printed during the invocation


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmulatedFunction:
    """`with EmulatedFunction(...) as fn: fn.invoke(event)`: one RIE and its runtime, stopped on exit."""

    def __init__(
        self,
        emulator: Emulator,
        runtime: RuntimePython,
        function: FunctionDefinition,
        *,
        name: str,
        layer_dirs: tuple[Path, ...],
        environment: dict[str, str],
    ) -> None:
        """`function` as synthesized, named `name`, its layers at `layer_dirs` (built for this host),
        `environment` added to its own (credentials, endpoints)."""
        self.emulator = emulator
        self.runtime = runtime
        self.function = function
        self.name = name
        self.handler = function.handler
        self.code_dir = function.code_dir
        self.layer_dirs = layer_dirs
        self.environment = environment
        self.port = free_port()
        self._process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def process_environment(self) -> dict[str, str]:
        """Lambda's environment for this function (see the module docstring)."""
        search_path = [str(self.code_dir)]
        for layer in self.layer_dirs:
            search_path += [str(layer / "python" / "lib" / f"python{_minor(self.runtime)}" / "site-packages")]
            search_path += [str(layer / "python")]
        runtime_bin = self.runtime.executable.parent
        return {
            "PATH": f"{runtime_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "LAMBDA_RUNTIME_DIR": str(runtime_bin.parent),
            "PYTHONPATH": os.pathsep.join(search_path),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{_minor(self.runtime)}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.function.timeout_s),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            **_logging(self.function),
            "_HANDLER": self.handler,
            **self.function.environment,
            **self.environment,
        }

    def __enter__(self) -> Self:
        command = [
            str(self.emulator.binary),
            "--log-level",
            "info",  # the INIT/INVOKE phase lines carry the durations
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{free_port()}",
            str(self.runtime.executable),
            "-m",
            "awslambdaric",
            self.handler,
        ]
        self._process = subprocess.Popen(  # noqa: S603 - the emulator binary, arguments we build
            command,
            cwd=self.code_dir,
            env=self.process_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: stopped with its runtime
        )
        self._reader = threading.Thread(target=self._read, name="rie-output", daemon=True)
        self._reader.start()
        try:
            self._await_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _read(self) -> None:
        stream = self._process.stdout if self._process is not None else None
        for line in stream or ():
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def _await_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeEmulatorError(
                    f"the emulator exited ({self._process.returncode}):\n{self.tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeEmulatorError(f"the emulator did not listen on 127.0.0.1:{self.port}:\n{self.tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=2)

    def output(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output()[-lines:])

    # -- invoking ------------------------------------------------------------------------------
    def invoke(self, event: Any) -> Response:
        """One synchronous invocation (RequestResponse), like `sam local invoke`."""
        start = len(self.output())
        request = urllib.request.Request(  # http://127.0.0.1 only
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.function.timeout_s + 15) as answer:  # noqa: S310
                body = answer.read().decode()
        except urllib.error.HTTPError as exc:  # init failure: 502 with the error as the body
            body = exc.read().decode()
        except OSError as exc:
            raise RuntimeEmulatorError(f"the emulator did not answer: {exc}\n{self.tail()}") from exc
        report, lines = self._report(start)
        payload = _json_or_text(body)
        return Response(payload, _error(payload), report, lines)

    def _report(self, start: int) -> tuple[Report, list[str]]:
        deadline = time.monotonic() + REPORT_WAIT_S
        while True:
            lines = self.output()[start:]
            if any(map(_REPORT.match, lines)) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        report = read_report(lines, self._peak_memory_mb())
        if report is None:
            raise RuntimeEmulatorError(f"the emulator printed no REPORT line:\n{self.tail()}")
        return report, [line for line in lines if not _RAPID.match(line)]

    def _peak_memory_mb(self) -> int | None:
        """Peak resident set of the runtime (the emulator's child), in MB (Linux /proc; else None)."""
        if self._process is None:
            return None
        for pid in _children(self._process.pid):
            status = Path(f"/proc/{pid}/status")
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return math.ceil(int(line.split()[1]) / 1024)
        return None


def read_report(lines: list[str], max_memory_used_mb: int | None) -> Report | None:
    """The figures of one invocation from the emulator's output (None without a REPORT line)."""
    found = next((m for m in map(_REPORT.match, lines) if m), None)
    if found is None:
        return None
    fields = {m["name"].strip(): float(m["value"]) for m in _REPORT_FIELD.finditer(found["fields"])}
    init = next((float(m["ms"]) for m in map(_INIT_REPORT.search, lines) if m), None)
    invoked = next((float(m["ms"]) for m in map(_INVOKE_DONE.search, lines) if m), None)
    duration = invoked if invoked is not None else fields.get("Duration", 0.0)
    if init is None and invoked is None and "Init Duration" in fields:
        init = fields["Init Duration"]  # no phase lines (another log level): the REPORT's own figures
    return Report(
        request_id=found["id"],
        duration_ms=round(duration, 2),
        billed_duration_ms=math.ceil(duration),
        memory_size_mb=int(fields.get("Memory Size", 0)),
        max_memory_used_mb=max_memory_used_mb,
        init_duration_ms=round(init, 2) if init is not None else None,
        line=found.string,
    )


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _logging(function: FunctionDefinition) -> dict[str, str]:
    """Lambda's advanced logging controls, as the function's LoggingConfig sets them."""
    found = {}
    if function.log_format:
        found["AWS_LAMBDA_LOG_FORMAT"] = function.log_format
    if function.log_format == "JSON" and function.log_level:
        found["AWS_LAMBDA_LOG_LEVEL"] = function.log_level
    return found


def _minor(runtime: RuntimePython) -> str:
    return ".".join(runtime.version.split(".")[:2])


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _error(payload: Any) -> dict[str, Any] | None:
    """The runtime's error document ({errorType, errorMessage, ...}), or a timeout's text."""
    if isinstance(payload, dict) and "errorType" in payload and "errorMessage" in payload:
        return payload
    if isinstance(payload, str) and payload.startswith("Task timed out"):
        return {"errorType": "Sandbox.Timedout", "errorMessage": payload}
    return None


__all__ = ["EmulatedFunction", "Report", "Response", "RuntimeEmulatorError", "free_port", "read_report"]
