"""Running the project's own processes (router, sink worker) as subprocesses in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from .local_process import terminate


class ProjectProcess:
    """``python -m auditstream <args>``, output to ``log_path``; stopped by its own PID."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditstream", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """Crash it: SIGKILL, no chance to flush or commit."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        terminate(self.proc, timeout)
        self._log.close()
        return int(self.proc.returncode)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> ProjectProcess:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
