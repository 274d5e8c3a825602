"""A webhook receiver for delivery benchmarks: answers every POST ``200`` after a fixed delay,
or never (``/hang/...`` paths), without parsing or verifying the body, so its own CPU use stays
out of the figures. It runs as its own process (one asyncio loop: hundreds of concurrent
connections cost it nothing) and appends one line per answered request to a file::

    <unix time answered> <X-Auditstream-Destination> <Idempotency-Key>

By hand::

    python -m bench.slow_receiver --port 8099 --delay 0.05 --log /tmp/answers.txt
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import TextIO

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class SlowReceiver:
    def __init__(self, delay_s: float, answers: TextIO) -> None:
        self.delay_s = delay_s
        self.answers = answers

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection ends."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "")
        if not length.isdigit():
            writer.write(_BAD)
            await writer.drain()
            return False
        await reader.readexactly(int(length))
        if path.startswith("/hang"):
            await reader.read()  # never answer; wait for the client to give up
            return False
        await asyncio.sleep(self.delay_s)
        writer.write(_OK)
        await writer.drain()
        destination = headers.get("x-auditstream-destination", "-")
        key = headers.get("idempotency-key", "-")
        self.answers.write(f"{time.time():.6f} {destination} {key}\n")
        return True


async def _serve(port: int, delay_s: float, answers: TextIO) -> None:
    receiver = SlowReceiver(delay_s, answers)
    server = await asyncio.start_server(receiver.serve_connection, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_receiver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before each answer")
    parser.add_argument("--log", required=True, help="file to append one line per answer to")
    args = parser.parse_args(argv)
    with open(args.log, "a", buffering=1) as answers, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.delay, answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
