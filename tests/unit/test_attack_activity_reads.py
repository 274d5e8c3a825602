"""One account asking many slow audit store reads at once must leave worker threads for the
other accounts (measured before the per-account share: sixteen facet reads of one account over
290,000 events made another account's one-page read wait 1.9 s instead of 2 ms)."""

from __future__ import annotations

import threading

import anyio
import pytest

from auditstream.api.activity_routes import StoreReads, per_account_reads
from auditstream.api.errors import Unavailable
from auditstream.store.errors import StoreError


@pytest.mark.parametrize(("threads", "share"), [(1, 1), (3, 1), (4, 1), (8, 2), (40, 10)])
def test_per_account_reads(threads: int, share: int) -> None:
    assert per_account_reads(threads) == share


def test_a_busy_account_leaves_threads_for_the_others() -> None:
    reads = StoreReads(limit=8)  # 2 per account
    release = threading.Event()
    running = threading.Semaphore(0)
    at_once = []
    lock = threading.Lock()
    holding = [0]

    def slow() -> str:
        with lock:
            holding[0] += 1
            at_once.append(holding[0])
        running.release()
        try:
            release.wait(60)  # released by the test; 60 s only if it fails first
            return "noisy"
        finally:
            with lock:
                holding[0] -= 1

    async def run() -> list[str]:
        got: list[str] = []

        async def noisy() -> None:
            got.append(await reads("noisy", slow))

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(noisy)
            for _ in range(2):  # the account's two reads are running (and blocked)
                await anyio.to_thread.run_sync(running.acquire)
            with anyio.fail_after(30):  # a hang guard: without the share this never runs
                got.append(await reads("quiet", lambda: "quiet"))
            assert reads.accounts_reading() == 1  # quiet's slot is gone already
            release.set()
        return got

    got = anyio.run(run)
    assert got[0] == "quiet"
    assert got.count("noisy") == 20
    assert max(at_once) == 2
    assert reads.accounts_reading() == 0


def test_a_failing_read_gives_its_place_back() -> None:
    reads = StoreReads(limit=4)

    def fails() -> None:
        raise StoreError("the disk went away")

    async def run() -> None:
        for _ in range(3):
            with pytest.raises(Unavailable):
                await reads("acme", fails)
        assert await reads("acme", lambda: 7) == 7

    anyio.run(run)
    assert reads.accounts_reading() == 0
