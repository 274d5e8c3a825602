"""A real single-node Apache Kafka broker (KRaft mode) for tests and benchmarks.

The broker runs as a separate JVM process through ``deploy/local/kafka.sh``,
which needs Java 17+ and, for the first fetch of the broker jars, Maven.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .local_process import StopOnExit, log_tail
from .ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"

_FETCH_TIMEOUT_S = 900.0
_START_TIMEOUT_S = 150.0
_STOP_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3


class KafkaBroker(StopOnExit):
    """A running broker listening on 127.0.0.1 only.

    Use ``KafkaBroker.start(workdir)`` (or ``with KafkaBroker.start(workdir) as broker:``)
    and connect clients to ``broker.bootstrap``. The broker has one node, allows no
    automatic topic creation, and supports idempotent and transactional producers.
    """

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        port: int,
        controller_port: int,
        listener_ports: Mapping[str, int] | None = None,
        props: Sequence[str] = (),
    ) -> None:
        """Wrap a broker already started in ``workdir``; use :meth:`start` instead."""
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.port = port
        self.controller_port = controller_port
        self.listener_ports: dict[str, int] = dict(listener_ports or {})
        """The port of each extra listener (see :meth:`start`), by name."""
        self._props = list(props)
        self._stopped = False

    def address(self, listener: str) -> str:
        """``127.0.0.1:port`` of the extra listener named ``listener``."""
        return f"127.0.0.1:{self.listener_ports[listener]}"

    @property
    def log_path(self) -> Path:
        """The broker's log file."""
        return self.workdir / "kafka.log"

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        listeners: Sequence[str] = (),
        props: Mapping[str, str] | None = None,
    ) -> KafkaBroker:
        """Fetch the broker jars if needed, start a broker in ``workdir``, wait until it is ready.

        ``listeners`` names extra listeners beside the PLAINTEXT one (which stays the bootstrap
        address and the brokers' own), each with the security protocol of its name (e.g.
        ``SASL_SSL``) on a free port of its own (:attr:`listener_ports`, :meth:`address`);
        ``props`` adds or overrides broker properties (e.g. the listener's keystore and SASL
        settings).

        ``workdir`` holds the broker's data, configuration, PID file and log; it is
        created if missing. Raises ``RuntimeError`` (with the script's output, which
        includes the tail of the broker log) if the jars cannot be fetched or the broker does
        not come up; no broker process is left running in that case.
        """
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        fetch = subprocess.run(
            [str(KAFKA_SH), "fetch"],
            capture_output=True,
            text=True,
            timeout=_FETCH_TIMEOUT_S,
            check=False,
        )
        if fetch.returncode != 0:
            raise RuntimeError(f"fetching the Kafka broker jars failed:\n{fetch.stderr[-4000:]}")

        error = ""
        for _ in range(_START_ATTEMPTS):
            port, controller_port = free_port(), free_port()
            if port == controller_port:
                continue
            extra_ports = {name: free_port() for name in listeners}
            if len({port, controller_port, *extra_ports.values()}) != 2 + len(extra_ports):
                continue
            prop_args = cls._listener_props(port, controller_port, extra_ports)
            prop_args += [f"{k}={v}" for k, v in (props or {}).items()]
            args = ["--port", str(port), "--controller-port", str(controller_port)]
            for prop in prop_args:
                args += ["--prop", prop]
            try:
                result = subprocess.run(
                    [str(KAFKA_SH), "start", *args, "--data", str(workdir)],
                    capture_output=True,
                    text=True,
                    timeout=_START_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                cls(workdir, "", port, controller_port).stop()
                tail = log_tail(workdir / "kafka.log")
                raise RuntimeError(f"Kafka broker start timed out in {workdir}:\n{tail}") from None
            if result.returncode == 0:
                bootstrap = result.stdout.strip().splitlines()[-1]
                return cls(workdir, bootstrap, port, controller_port, extra_ports, prop_args)
            error = result.stderr.strip()  # kafka.sh includes the tail of the broker log
            # Another process may have taken a port between free_port() and the bind.
            if "Address already in use" not in error:
                break
        raise RuntimeError(f"Kafka broker did not start in {workdir}:\n{error}")

    @staticmethod
    def _listener_props(port: int, controller_port: int, extra: Mapping[str, int]) -> list[str]:
        """The listener properties that replace kafka.sh's when there are extra listeners."""
        if not extra:
            return []
        names = ["PLAINTEXT", *extra]
        at = {"PLAINTEXT": port, **extra}
        advertised = ",".join(f"{n}://127.0.0.1:{at[n]}" for n in names)
        protocols = ",".join(f"{n}:{n}" for n in names)
        return [
            f"listeners={advertised},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={advertised}",
            f"listener.security.protocol.map={protocols},CONTROLLER:PLAINTEXT",
        ]

    def _pid(self) -> int | None:
        try:
            return int((self.workdir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill9(self) -> None:
        """Crash the broker (SIGKILL: no controlled shutdown) and wait until it has gone.

        Its data stays; :meth:`restart` brings it back on the same ports.
        """
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        (self.workdir / "kafka.pid").unlink(missing_ok=True)
        self._stopped = True

    def restart(self) -> None:
        """Start the broker again after :meth:`stop` or :meth:`kill9`: same ports, same data.

        Raises ``RuntimeError`` with the broker log's tail if it does not come up.
        """
        self.stop()
        args = ["--port", str(self.port), "--controller-port", str(self.controller_port)]
        for prop in self._props:
            args += ["--prop", prop]
        result = subprocess.run(
            [str(KAFKA_SH), "start", *args, "--data", str(self.workdir)],
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"Kafka broker did not restart in {self.workdir}:\n{result.stderr}")
        self._stopped = False

    def stop(self) -> None:
        """Stop the broker (TERM, then KILL after a timeout) and wait until it has exited.

        Calling it again does nothing. Raises ``RuntimeError`` with the script's
        output if the stop script fails.
        """
        if self._stopped:
            return
        result = subprocess.run(
            [str(KAFKA_SH), "stop", "--data", str(self.workdir)],
            capture_output=True,
            text=True,
            timeout=_STOP_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"stopping the Kafka broker in {self.workdir} failed:\n{result.stderr}"
            )
        self._stopped = True
