"""The fault suite at full size: ``python -m bench.faults`` (``--help`` explains).

Each scenario starts its own three-node Kafka cluster on 127.0.0.1, runs the real router and
sink worker processes against it, produces a seeded stream of simulated events while faults are
injected, waits until every destination holds what the settings say it should, and prints one
row: events produced, faults injected, events expected (summed over destinations; each
destination's count below the table), delivered, LOST, DUPLICATED, the time to drain after the
last event was produced, and processes that crashed by themselves. The engine is
``devservices/faults.py``; ``tests/reliability`` runs the same scenarios at CI size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

from devservices import faults


def _parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<11} {faults.DESCRIPTIONS[name]}" for name in faults.SCENARIOS]
    full = faults.Options.full()
    p = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=textwrap.fill(
            "Prove that no audit event is lost or duplicated under faults: each scenario "
            "runs the real router and sink workers (python -m auditstream ...) on a fresh "
            "three-broker KRaft cluster (replication factor 3, min.insync.replicas=2), produces "
            "simulated events to the activity topic while it injects faults, and counts what each "
            "destination (local directories, two webhook receivers) really holds against what the "
            "settings include, computed from the produced events. A webhook event repeated with "
            "the same Idempotency-Key is a retry, not a duplicate; with a new key it is "
            "DUPLICATED. Exit status 1 if any event was lost or duplicated or a scenario did not "
            "finish.",
            width=88,
        )
        + "\n\nScenarios (in this order; join with + to run several in one stream):\n"
        + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenario",
        action="append",
        help="a scenario to run (repeatable; default: all, one after the other)",
    )
    p.add_argument(
        "--events",
        type=int,
        default=full.events,
        help=f"events produced per scenario (default {full.events:,})",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=full.rate,
        help=f"events produced per second (default {full.rate:g})",
    )
    p.add_argument(
        "--kills",
        type=int,
        default=full.kills,
        help=f"kill -9s in the kill9 scenario (default {full.kills})",
    )
    p.add_argument(
        "--outage",
        type=float,
        default=full.outage_s,
        help=f"seconds the failing webhook answers 503 (default {full.outage_s:g})",
    )
    p.add_argument("--seed", type=int, default=full.seed, help="random seed (default %(default)s)")
    p.add_argument(
        "--workdir",
        type=Path,
        help="keep the clusters' data and the processes' logs here (default: a temporary "
        "directory, removed afterwards)",
    )
    p.add_argument("--json", type=Path, help="also write every figure as JSON to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios = args.scenario or list(faults.SCENARIOS)
    options = replace(
        faults.Options.full(args.events, args.seed),
        rate=args.rate,
        kills=args.kills,
        outage_s=args.outage,
    )
    root = args.workdir or Path(tempfile.mkdtemp(prefix="auditstream-faults-"))
    results: list[faults.Result] = []
    try:
        for name in scenarios:
            results.append(faults.run(name, root / name.replace("+", "-"), options))
            print("\n".join(faults.table(results[-1:])), file=sys.stderr, flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(faults.table(results)))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    bad = [r for r in results if r.lost or r.duplicated or r.extra or r.problems]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
