"""moto's standalone server in its own process, on 127.0.0.1 and a free port: AWS for a function that
runs in another process (the emulated runtime) and for this one, which creates the stack's resources and
reads the side effects back.

Its own process, not `moto.server.ThreadedMotoServer`: a threaded server shares moto's global backends
with this process, so two sessions (or a `mock_aws` test) in one process would see each other's tables.
A process per session is isolated by construction, and its requests do not compete for this process's GIL.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Self

from casewatch_dev.lambda_runtime.rie import RuntimeEmulatorError, free_port

READY_TIMEOUT_S = 30.0


class MotoServer:
    """`with MotoServer() as aws: aws.url` (`http://127.0.0.1:PORT`), stopped on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self._log = tempfile.TemporaryFile()  # closed in stop()
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, arguments we build
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
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

    def _await_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeEmulatorError(
                    f"moto's server exited ({self._process.returncode}):\n{self.log()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeEmulatorError(f"moto's server did not listen on {self.url}:\n{self.log()}")

    def log(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


__all__ = ["MotoServer"]
