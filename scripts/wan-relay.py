#!/usr/bin/env python3
"""A shaped link on loopback for the WAN benchmark (kernel netem is not available here).

    wan-relay.py --listen PORT --to HOST:PORT --latency-ms 50 --mbit 20

Every TCP connection to PORT is relayed to HOST:PORT. All connections share one link per
direction: chunks leave it one after the other at the bandwidth (first come, first served,
no per-connection cap or penalty) and arrive one one-way latency after they left. A new connection pays the TCP
handshake: its first bytes reach the server no sooner than three one-way latencies after it
was accepted, as they would after SYN, SYN-ACK and the first segment. TLS passes through
untouched. Prints `ready PORT` on stdout, and byte counts on stderr when stopped.
"""

import argparse
import asyncio
import signal
import sys
import time

CHUNK = 16 * 1024


class Direction:
    """One direction of the link: a serializer shared by every connection, and a latency.

    A chunk leaves the link's queue when every chunk before it (of any connection) has
    left, taking len/rate seconds on the wire, and arrives one latency after it left. The
    queue holds at most `backlog` seconds of data (a router's buffer): a reader that would
    overfill it waits, which is what pushes back on the sender. Because the departure times
    are computed, not slept for, a relay that wakes up late does not lose bandwidth as long
    as the queue was not empty: the link never idles while data is waiting.
    """

    def __init__(self, rate_bytes: float, latency: float, backlog: float):
        self.rate = rate_bytes
        self.latency = latency
        self.backlog = backlog
        self.free_at = 0.0  # when the last queued chunk has left
        self.bytes = 0

    async def take(self, n: int) -> float:
        """Queues n bytes; returns when they arrive at the other end."""
        now = time.monotonic()
        self.free_at = max(now, self.free_at) + n / self.rate
        self.bytes += n
        arrives = self.free_at + self.latency
        wait = self.free_at - now - self.backlog
        if wait > 0:
            await asyncio.sleep(wait)
        return arrives


async def pump(reader, writer, link: Direction, not_before: float) -> None:
    """Reads as fast as the link's queue takes it; delivers each chunk when it arrives, in order."""
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver():
        while True:
            at, data = await queue.get()
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            arrives = await link.take(len(data))
            queue.put_nowait((max(arrives, not_before), data))
        queue.put_nowait((max(time.monotonic() + link.latency, not_before), None))
        await task
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        task.cancel()
        writer.transport.abort()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=int, default=0)
    p.add_argument("--to", required=True, help="HOST:PORT of the server")
    p.add_argument("--latency-ms", type=float, required=True, help="one way")
    p.add_argument("--mbit", type=float, required=True, help="shared by all connections, each way")
    p.add_argument("--queue-ms", type=float, default=50.0, help="the bottleneck's buffer, in ms")
    args = p.parse_args()
    host, port = args.to.rsplit(":", 1)
    latency = args.latency_ms / 1000
    rate = args.mbit * 1_000_000 / 8
    up = Direction(rate, latency, args.queue_ms / 1000)
    down = Direction(rate, latency, args.queue_ms / 1000)
    connections = 0

    async def handle(c_reader, c_writer):
        nonlocal connections
        connections += 1
        accepted = time.monotonic()
        try:
            s_reader, s_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            c_writer.transport.abort()
            return
        await asyncio.gather(
            pump(c_reader, s_writer, up, accepted + 3 * latency),
            pump(s_reader, c_writer, down, 0.0),
        )
        for w in (s_writer, c_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"relay: {connections} connections, {down.bytes} bytes down, {up.bytes} bytes up", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
