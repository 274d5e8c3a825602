"""A real three-node Apache Kafka cluster (KRaft) on 127.0.0.1 for fault tests.

Every node is broker and controller at once; the controller quorum is all the nodes; they share
one cluster id. Topics get replication factor 3 and ``min.insync.replicas=2`` by default (the
internal offsets and transaction topics too), so one node may crash without losing an
acknowledged write or stopping producers with ``acks=all``.

Each node is a JVM started through ``deploy/local/kafka.sh`` (``--node-id``, ``--voters``,
``--cluster-id``) with a small heap (``KAFKA_HEAP_OPTS``, default ``-Xms128m -Xmx384m``), in
``workdir/node-<id>``. ``kill9(node)``, ``stop(node)`` and ``restart(node)`` act on one node by
its own PID; ``controller()`` says which node is the active controller (the metadata quorum's
leader).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .kafka import KAFKA_SH
from .local_process import StopOnExit, log_tail
from .ports import free_port

_FETCH_TIMEOUT_S = 900.0
_START_TIMEOUT_S = 240.0
_STOP_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3
_LAST_NODE_STOP_S = 3.0
HEAP_OPTS = "-Xms128m -Xmx384m"

REPLICATION_PROPS = (
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "transaction.state.log.replication.factor=3",
    "transaction.state.log.min.isr=2",
)
"""Broker defaults of the cluster (``kafka.sh`` appends them: later keys win)."""


def _random_cluster_id() -> str:
    """A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    import base64

    while True:
        raw = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not raw.startswith("-") and not raw.startswith("AAAAAAAAAAAAAAAAAAAAA"):
            return raw


@dataclass(frozen=True)
class KafkaNode:
    """One node of the cluster: its id, data directory and ports (all on 127.0.0.1)."""

    node_id: int
    workdir: Path
    port: int
    controller_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kafka.log"

    def pid(self) -> int | None:
        try:
            return int((self.workdir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None


class KafkaCluster(StopOnExit):
    """A running cluster. Use ``KafkaCluster.start(workdir)`` (or ``with ... as cluster:``) and
    connect clients to ``cluster.bootstrap`` (every node's address, comma-separated).

    Nodes are numbered from 1. ``stop()`` without a node stops them all."""

    def __init__(self, workdir: Path, nodes: list[KafkaNode], cluster_id: str, heap: str) -> None:
        """Wrap nodes already started; use :meth:`start` instead."""
        self.workdir = workdir
        self.nodes = {n.node_id: n for n in nodes}
        self.cluster_id = cluster_id
        self._heap = heap

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes.values())

    @property
    def voters(self) -> str:
        return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes.values())

    @classmethod
    def start(cls, workdir: Path, brokers: int = 3, heap: str | None = None) -> KafkaCluster:
        """Fetch the jars if needed, start ``brokers`` nodes at once, wait until all are ready.

        Raises ``RuntimeError`` with the nodes' log tails if the cluster does not come up; no
        node is left running then. ``heap`` (default ``$KAFKA_HEAP_OPTS`` or ``HEAP_OPTS``)
        are each node's JVM heap options.
        """
        if brokers < 1:
            raise ValueError("a cluster needs at least one node")
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
        heap = heap or os.environ.get("KAFKA_HEAP_OPTS") or HEAP_OPTS
        cluster_id = _random_cluster_id()
        error = ""
        for attempt in range(_START_ATTEMPTS):
            ports: set[int] = set()
            while len(ports) < 2 * brokers:
                ports.add(free_port())
            ordered = sorted(ports)
            # A failed attempt's nodes were formatted for other ports: start afresh.
            base = workdir if attempt == 0 else workdir / f"retry-{attempt}"
            nodes = [
                KafkaNode(i + 1, base / f"node-{i + 1}", ordered[2 * i], ordered[2 * i + 1])
                for i in range(brokers)
            ]
            cluster = cls(workdir, nodes, cluster_id, heap)
            error = cluster._start_nodes(list(cluster.nodes))
            if not error:
                return cluster
            cluster.stop()
            # Another process may have taken a port between free_port() and the bind.
            if "Address already in use" not in error:
                break
        raise RuntimeError(f"Kafka cluster did not start in {workdir}:\n{error}")

    def _command(self, node: KafkaNode) -> list[str]:
        return [
            str(KAFKA_SH),
            "start",
            "--port",
            str(node.port),
            "--controller-port",
            str(node.controller_port),
            "--data",
            str(node.workdir),
            "--node-id",
            str(node.node_id),
            "--voters",
            self.voters,
            "--cluster-id",
            self.cluster_id,
            *(arg for prop in REPLICATION_PROPS for arg in ("--prop", prop)),
        ]

    def _start_nodes(self, ids: list[int]) -> str:
        """Start the nodes ``ids`` at the same time (a new cluster's nodes wait for a quorum);
        an empty string once all are ready, the errors otherwise."""
        env = {
            **os.environ,
            "KAFKA_HEAP_OPTS": self._heap,
            "KAFKA_START_TIMEOUT": str(int(_START_TIMEOUT_S - 30)),
        }
        procs: dict[int, subprocess.Popen[str]] = {}
        for i in ids:
            self.nodes[i].workdir.mkdir(parents=True, exist_ok=True)
            procs[i] = subprocess.Popen(
                self._command(self.nodes[i]),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        errors: list[str] = []
        for i, proc in procs.items():
            try:
                _out, err = proc.communicate(timeout=_START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                err = f"timed out\n{log_tail(self.nodes[i].log_path)}"
            if proc.returncode != 0:
                errors.append(f"node {i}: {err.strip()}")
        return "\n".join(errors)

    def _node(self, node_id: int) -> KafkaNode:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise ValueError(f"no node {node_id} (nodes: {sorted(self.nodes)})") from None

    def alive(self, node_id: int) -> bool:
        """Whether the node's process runs."""
        pid = self._node(node_id).pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill9(self, node_id: int) -> None:
        """Crash one node (SIGKILL: no controlled shutdown) and wait until it has gone. Its
        data stays; :meth:`restart` brings it back on the same ports."""
        node = self._node(node_id)
        pid = node.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            while time.monotonic() < deadline and self.alive(node_id):
                time.sleep(0.05)
            (node.workdir / "kafka.pid").unlink(missing_ok=True)

    def stop(self, node_id: int | None = None, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop one node (TERM, then KILL after ``timeout`` seconds), or, without ``node_id``,
        every node, one after the other. The last node of a cluster cannot finish a controlled
        shutdown (no quorum is left to record it): it gets KILL after a few seconds.

        Raises ``RuntimeError`` with the script's output if the stop script fails."""
        if node_id is not None:
            ids = [self._node(node_id).node_id]
        else:
            ids = [i for i in self.nodes if self.alive(i)] or list(self.nodes)
        failed: list[str] = []
        for n, i in enumerate(ids):
            last = node_id is None and n == len(ids) - 1 and len(ids) > 1
            wait = min(timeout, _LAST_NODE_STOP_S) if last else timeout
            data = str(self.nodes[i].workdir)
            result = subprocess.run(
                [str(KAFKA_SH), "stop", "--data", data, "--timeout", str(int(wait))],
                capture_output=True,
                text=True,
                timeout=wait + 30,
                check=False,
            )
            if result.returncode != 0:
                failed.append(f"node {i}: {result.stderr}")
        if failed:
            raise RuntimeError("stopping Kafka nodes failed:\n" + "\n".join(failed))

    def restart(self, node_id: int) -> None:
        """Start a stopped or crashed node again: same ports, same data. Waits until it is
        ready; raises ``RuntimeError`` with its log's tail if it does not come up."""
        if self.alive(node_id):
            self.stop(node_id)
        error = self._start_nodes([node_id])
        if error:
            raise RuntimeError(f"Kafka node {node_id} did not restart:\n{error}")

    def controller(self, timeout: float = 30.0) -> int:
        """The id of the active controller: the Raft leader of the metadata quorum, as the
        running nodes record it (polls until they agree on one that runs). Raises
        ``TimeoutError`` otherwise.

        The Kafka protocol does not tell clients: in KRaft mode a broker answers a metadata or
        describe-cluster request with a random live broker as the "controller". Each node
        writes the leader it follows, with the election epoch, to
        ``__cluster_metadata-0/quorum-state``; the latest epoch's leader is the controller.
        """
        deadline = time.monotonic() + timeout
        while True:
            leader = self._quorum_leader()
            if leader is not None and self.alive(leader):
                return leader
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no running node led the metadata quorum in {timeout:g} s")
            time.sleep(0.2)

    def _quorum_leader(self) -> int | None:
        best: tuple[int, int] | None = None  # (epoch, leader)
        for i, node in self.nodes.items():
            if not self.alive(i):
                continue
            path = node.workdir / "logs" / "__cluster_metadata-0" / "quorum-state"
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being rewritten: read again next time
            leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
            if leader in self.nodes and (best is None or epoch > best[0]):
                best = (epoch, leader)
        return None if best is None else best[1]
