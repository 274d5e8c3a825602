"""The sink worker beside a peer, quixstreams' S3 file sink, on the same events, in one run.

Run from the repository root::

    .venv/bin/python -m bench.peers [--events N] [--rounds R] [--json FILE]

One Kafka broker (``devservices.kafka.KafkaBroker``) and one S3 emulator (moto_server,
``devservices.s3.S3Server``), both on 127.0.0.1, started here and stopped at the end. Each
round writes the same N pre-encoded activity records (Avro single-object encoding, key = the
account id) to a fresh destination topic, then runs on that topic, each as its own process,
in an order that rotates from round to round:

- ``quixstreams``: a small quixstreams 3.28.1 app (its own virtualenv under
  ``.cache/peer-venv``, made on first use) that decodes each value with fastavro and writes
  NDJSON + gzip objects with ``S3FileSink``, committing every 1000 records or 5 s;
- ``worker ndjson``: ``auditstream sink-worker`` delivering to an S3 destination of NDJSON +
  gzip with the default batch limits (1000 events, 4 MiB, 5 s);
- ``worker avro``: the same with Avro container objects (deflate).

Matched settings: gzip level 6 for both (quixstreams' ``JSONFormat`` compresses at 9 unless
told otherwise; the app gives it level 6), orjson for both (with the same options), about
1000 events an object for both. quixstreams wraps each line in ``_timestamp``, ``_key`` and
``_value``: a few bytes more a line.

A run is timed from the process start until its consumer group's committed offset reaches
the end of the topic (both commit only after their objects are stored), read every 50 ms;
``first`` is the time to the first commit. After the round, every object each one wrote is
read back and its event ids counted: each must hold exactly the N distinct ids. A last
untimed run profiles the worker (cProfile on every thread) and prints its top five functions.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from fastavro import reader as avro_reader

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from auditstream.sinks.worker_options import WorkerOptions
from bench.report import progress, run_meta, write_json
from bench.workload import simulator

REPO_ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = REPO_ROOT / ".cache" / "peer-venv"
PEER_REQUIREMENTS = ("quixstreams[s3]==3.28.1", "orjson")
ACCOUNT = "bench-acct"
BUCKET = "peers-bench"
GZIP_LEVEL = 6
BATCH_EVENTS = 1000
BATCH_AGE_S = 5.0
RUN_TIMEOUT_S = 600.0
WATCH_INTERVAL_S = 0.05
SYSTEMS = ("quixstreams", "worker ndjson", "worker avro")
DEFAULT_SYSTEMS = SYSTEMS
# Waiting inside these is not work: left out of the profile's top five.
_WAITS = ("acquire", "wait", "sleep", "consume", "poll", "select", "get", "recv_into", "flush")

QUIX_APP = (
    '''
"""A quixstreams S3 sink app: Avro single-object values to NDJSON + gzip objects."""
import gzip, io, json, sys
from fastavro import parse_schema, schemaless_reader
import orjson
from quixstreams import Application
from quixstreams.models.serializers import Deserializer
from quixstreams.sinks.community.file.formats import JSONFormat
from quixstreams.sinks.community.file.s3 import S3FileSink

bootstrap, topic, group, bucket, directory, endpoint, schema_path, state_dir = sys.argv[1:9]
SCHEMA = parse_schema(json.loads(open(schema_path).read()))
OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC

class SingleObjectAvro(Deserializer):
    def __call__(self, value, ctx):
        return schemaless_reader(io.BytesIO(value[10:]), SCHEMA, None)

class JsonGzip6(JSONFormat):
    def serialize(self, batch):
        self._compress = False
        body = super().serialize(batch)
        return gzip.compress(body, compresslevel=%(level)d)

fmt = JsonGzip6(compress=True, dumps=lambda o: orjson.dumps(o, option=OPTS).decode())
fmt._file_extension = ".jsonl.gz"
app = Application(
    broker_address=bootstrap,
    consumer_group=group,
    auto_offset_reset="earliest",
    commit_every=%(events)d,
    commit_interval=%(age)r,
    state_dir=state_dir,
)
sink = S3FileSink(
    bucket=bucket, directory=directory, format=fmt, endpoint_url=endpoint,
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
)
app.dataframe(app.topic(topic, value_deserializer=SingleObjectAvro())).sink(sink)
app.run()
'''.replace("%(level)d", str(GZIP_LEVEL))
    .replace("%(events)d", str(BATCH_EVENTS))
    .replace("%(age)r", repr(BATCH_AGE_S))
)


@dataclass
class Run:
    system: str
    round: int
    seconds: float
    """From the process start to the last commit."""
    first_commit_s: float
    rate: float
    """Events per second over ``seconds``."""
    steady_rate: float
    """Events per second from the first commit to the last (start-up left out)."""
    rss_mib: float
    objects: int
    object_bytes: int


def ensure_peer_venv() -> Path:
    """The peer virtualenv's Python, made (and quixstreams installed) on first use."""
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ".installed"
    if marker.is_file() and marker.read_text() == "\n".join(PEER_REQUIREMENTS):
        return python
    progress(f"making {PEER_VENV} with {', '.join(PEER_REQUIREMENTS)} (once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True)
    marker.write_text("\n".join(PEER_REQUIREMENTS))
    return python


def worker_command(bootstrap: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "auditstream"),
        "sink-worker",
        "--backend",
        "kafka",
        "--bootstrap",
        bootstrap,
        "--no-address-check",
    ]


def peak_rss_mib(pid: int) -> float:
    """``VmHWM`` of a running process and of its child processes (a worker's render
    processes), in MiB; 0 for what cannot be read."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = 0.0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            own = int(line.split()[1]) / 1024.0
    return own + sum(peak_rss_mib(int(child)) for child in children)


def stop(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps the process."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def watch(
    log: KafkaLog, process: subprocess.Popen[bytes], group: str, topic: str, n: int, t0: float
) -> tuple[float, float, int]:
    """Seconds from ``t0`` to the first commit and to the commit of all ``n`` records of
    ``topic`` by ``group``, and the count committed at the first sight of a commit. Raises
    ``RuntimeError`` if the process ends or ``RUN_TIMEOUT_S`` passes first."""
    first: float | None = None
    first_count = 0
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} ended with {process.returncode} before {n}")
        now = time.perf_counter()
        if now - t0 > RUN_TIMEOUT_S:
            raise RuntimeError(f"{process.args!r}: not done in {RUN_TIMEOUT_S:g} s")
        try:
            done = sum(log.committed_offsets(group, topic).values())
        except LogError:  # the group coordinator still loading, on a fresh broker
            done = 0
        if done and first is None:
            first, first_count = now - t0, done
        if done >= n:
            return first if first is not None else now - t0, now - t0, first_count
        time.sleep(WATCH_INTERVAL_S)


def event_ids(objects: dict[str, bytes]) -> list[str]:
    """Every event id in the objects: NDJSON (ours: ``event_id``; quixstreams: in
    ``_value``) or Avro containers."""
    ids: list[str] = []
    for key, data in objects.items():
        if key.endswith(".avro"):
            records: list[Any] = list(avro_reader(io.BytesIO(data)))
            ids.extend(str(e["event_id"]) for e in records)
            continue
        for line in gzip.decompress(data).splitlines():
            doc = orjson.loads(line)
            ids.append(str(doc["_value"]["event_id"] if "_value" in doc else doc["event_id"]))
    return ids


def objects_under(client: Any, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            out[item["Key"]] = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return out


def destination(dest_id: str, prefix: str, endpoint: str, fmt: str) -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "s3",
        "bucket": BUCKET,
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "force_path_style": True,
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "prefix": prefix,
        "format": fmt,
        "compression": "gzip" if fmt == "ndjson" else "deflate",
        "batch": {"max_events": BATCH_EVENTS, "max_age_s": BATCH_AGE_S},
    }


class Bench:
    def __init__(self, workdir: Path, bootstrap: str, endpoint: str, s3: Any, n: int) -> None:
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.endpoint = endpoint
        self.s3 = s3
        self.n = n
        self.log = KafkaLog(bootstrap)
        self.quix_python = ensure_peer_venv()
        self.app = workdir / "quix_s3_app.py"
        self.app.write_text(QUIX_APP)
        self.schema = REPO_ROOT / "schemas" / "avro" / "ActivityEvent.v2.avsc"
        self.events = list(simulator([ACCOUNT]).events(n))
        self.payloads = [to_record(e) for e in self.events]
        self.expected = {str(e["event_id"]) for e in self.events}
        self.topic_no = 0
        self.destinations: dict[str, dict[str, Any]] = {}

    def fresh_topic(self, fmt: str) -> tuple[str, str]:
        """A new destination of format ``fmt``, its topic holding the N records: its topic
        and its object prefix. The account's settings name this destination alone."""
        self.topic_no += 1
        dest_id = f"peers-{self.topic_no}"
        prefix = f"w{self.topic_no}"
        self.destinations[dest_id] = destination(dest_id, prefix, self.endpoint, fmt)
        self.use(dest_id)
        topic = topics.destination_topic(dest_id)
        producer = self.log.producer()
        for r in self.payloads:
            producer.produce(OutgoingRecord(topic, r.value, r.key, r.headers))
        if producer.flush(120.0):
            raise RuntimeError(f"records not stored in {topic}")
        producer.close()
        return topic, prefix

    def use(self, dest_id: str) -> None:
        """Publish the account's settings with destination ``dest_id`` alone (so a worker run
        delivers that destination's topic only)."""
        settings = {"account_id": ACCOUNT, "destinations": [self.destinations[dest_id]]}
        publish_settings(self.log, [AccountSettings.model_validate(settings)])

    def run(self, system: str, rnd: int, topic: str, prefix: str) -> Run:
        if system == "quixstreams":
            group, prefix = f"quix-{topic}", f"q_{prefix}"
            command = [
                str(self.quix_python),
                str(self.app),
                self.bootstrap,
                topic,
                group,
                BUCKET,
                prefix,
                self.endpoint,
                str(self.schema),
                str(self.workdir / f"quix-state-{rnd}"),
            ]
        else:
            self.use(topics.destination_of(topic) or "")
            group, command = topics.SINK_GROUP, worker_command(self.bootstrap)
        logfile = (self.workdir / f"{system.replace(' ', '-')}-{rnd}.log").open("wb")
        t0 = time.perf_counter()
        process = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT)
        try:
            first, seconds, first_count = watch(self.log, process, group, topic, self.n, t0)
            rss = peak_rss_mib(process.pid)
        except RuntimeError as exc:
            tail = Path(logfile.name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\n--- its output ends:\n{tail}") from None
        finally:
            stop(process)
            logfile.close()
        objects = objects_under(self.s3, prefix + "/")
        ids = event_ids(objects)
        if len(ids) != self.n or set(ids) != self.expected:
            raise RuntimeError(
                f"{system}: {len(ids)} events, {len(set(ids))} distinct, "
                f"{len(self.expected - set(ids))} missing (expected exactly {self.n})"
            )
        steady = (self.n - first_count) / (seconds - first) if seconds > first else 0.0
        return Run(
            system,
            rnd,
            seconds,
            first,
            self.n / seconds,
            steady,
            rss,
            len(objects),
            sum(len(b) for b in objects.values()),
        )

    def profile(self, keep: Path | None = None) -> list[str]:
        """The worker's top five functions by own time (waits left out), one untimed run."""
        topic, _prefix = self.fresh_topic("ndjson")
        out = self.workdir / "worker.prof"
        command = [sys.executable, "-m", "bench.peers", "--profiled-worker", str(out), "--"]
        command += worker_command(self.bootstrap)[1:]
        logfile = (self.workdir / "profiled-worker.log").open("wb")
        t0 = time.perf_counter()
        process = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            watch(self.log, process, topics.SINK_GROUP, topic, self.n, t0)
        finally:
            stop(process)
            logfile.close()
        if keep is not None:
            shutil.copyfile(out, keep)
        return top_functions(out, 5)

    def close(self) -> None:
        self.log.close()


def top_functions(path: Path, count: int) -> list[str]:
    stats = pstats.Stats(str(path))
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for k, v in entries.items() if not _is_wait(k))
    rows = sorted(((v[2], k) for k, v in entries.items() if not _is_wait(k)), reverse=True)
    lines = []
    for own, (file, line, name) in rows[:count]:
        where = f"{Path(file).name}:{line}" if file != "~" else "builtin"
        lines.append(f"{100 * own / total:5.1f}%  {own:6.2f}s  {name}  ({where})")
    return lines


def _is_wait(key: tuple[str, int, str]) -> bool:
    name = key[2]
    return (key[0] == "~" and any(w in name for w in _WAITS)) or name == "<module>"


def profiled_worker(out: Path, argv: Sequence[str]) -> int:
    """Run ``auditstream`` ``argv`` with cProfile on every thread; the merged stats go to
    ``out`` when it returns (on SIGTERM the worker drains and returns)."""
    import cProfile
    import threading

    from auditstream.cli import main

    profiles: list[cProfile.Profile] = []

    def start(_frame: Any, _event: str, _arg: Any) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    threading.setprofile(start)
    own = cProfile.Profile()
    own.enable()
    try:
        code = main(list(argv))
    finally:
        own.disable()
        threading.setprofile(None)  # type: ignore[arg-type,unused-ignore]
        stats = pstats.Stats(own)
        for profile in profiles:
            stats.add(profile)
        stats.dump_stats(str(out))
    return code


def median_spread(values: list[float]) -> str:
    return f"{statistics.median(values):10,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events a run (100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, order rotating (3)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    parser.add_argument("--keep-profile", type=Path, help="copy the worker's cProfile stats here")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"which to run, comma-separated, of: {', '.join(SYSTEMS)} (all)",
    )
    parser.add_argument("--profiled-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profiled_worker is not None:
        return profiled_worker(args.profiled_worker, args.rest)
    if args.events < BATCH_EVENTS or args.rounds < 1:
        parser.error(f"--events must be at least {BATCH_EVENTS} and --rounds at least 1")

    from devservices.kafka import KafkaBroker
    from devservices.s3 import S3Server

    chosen = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    defaults = WorkerOptions()
    progress(
        f"worker defaults: {defaults.delivery_threads} delivery threads, poll "
        f"{defaults.poll_records} records"
    )
    workdir = Path(tempfile.mkdtemp(prefix="auditstream-peers-"))
    runs: list[Run] = []
    profile: list[str] = []
    try:
        with KafkaBroker.start(workdir / "kafka") as broker, S3Server.start(workdir / "s3") as s3:
            client = s3.client()
            client.create_bucket(Bucket=BUCKET)
            bench = Bench(workdir, broker.bootstrap, s3.endpoint_url, client, args.events)
            try:
                for rnd in range(args.rounds):
                    shift = rnd % len(chosen)
                    order = chosen[shift:] + chosen[:shift]
                    ndjson_topic = bench.fresh_topic("ndjson")
                    for system in order:
                        if system == "worker avro":
                            topic, prefix = bench.fresh_topic("avro")
                        else:
                            topic, prefix = ndjson_topic
                        run = bench.run(system, rnd, topic, prefix)
                        runs.append(run)
                        progress(
                            f"round {rnd + 1} {system}: {run.rate:,.0f} ev/s "
                            f"(steady {run.steady_rate:,.0f}), first commit "
                            f"{run.first_commit_s:.2f} s, {run.objects} objects, "
                            f"RSS {run.rss_mib:.0f} MiB"
                        )
                if not args.no_profile:
                    progress("profiling the worker (one untimed run)")
                    profile = bench.profile(args.keep_profile)
            finally:
                bench.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    by = {s: [r for r in runs if r.system == s] for s in SYSTEMS if s in chosen}
    print(f"\n{args.events:,} events a run, {args.rounds} rounds; median (min-max)")
    print(
        f"{'system':14} {'events/s':>26} {'steady events/s':>26} {'first commit s':>15} "
        f"{'RSS MiB':>8} {'objects':>8} {'bytes/event':>12}"
    )
    for system, rs in by.items():
        print(
            f"{system:14} {median_spread([r.rate for r in rs]):>26} "
            f"{median_spread([r.steady_rate for r in rs]):>26} "
            f"{statistics.median(r.first_commit_s for r in rs):15.2f} "
            f"{statistics.median(r.rss_mib for r in rs):8.0f} "
            f"{statistics.median(r.objects for r in rs):8.0f} "
            f"{statistics.median(r.object_bytes for r in rs) / args.events:12.1f}"
        )
    quix = (
        statistics.median(r.rate for r in by.get("quixstreams", [])) if "quixstreams" in by else 0
    )
    for system in [s for s in SYSTEMS[1:] if s in by and quix]:
        ratios = [w.rate / q.rate for w, q in zip(by[system], by["quixstreams"], strict=True)]
        ratio = statistics.median(r.rate for r in by[system]) / quix
        each = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"ratio {system} / quixstreams: {ratio:.2f} (per round {each})")
    if profile:
        print("\nworker profile, top five by own time (waits left out):")
        print("\n".join("  " + line for line in profile))
    if args.json:
        write_json(
            args.json,
            {
                "meta": run_meta("bench.peers"),
                "runs": [asdict(r) for r in runs],
                "profile": profile,
            },
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
