#!/usr/bin/env python3
"""A shaped link on loopback for the WAN benchmark (kernel netem is not available here).

    wan-relay.py --listen PORT --to HOST:PORT --latency-ms 50 --mbit 20

Every TCP connection to PORT is relayed to HOST:PORT. Each chunk, in either direction, is
delivered one one-way latency after it entered the link, and all connections share one token
bucket per direction (the bandwidth cap of one access link). A new connection pays the TCP
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
    """One direction of the link: a token bucket shared by every connection, and a latency."""

    def __init__(self, rate_bytes: float, latency: float, burst: int):
        self.rate = rate_bytes
        self.latency = latency
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()  # FIFO: connections take turns, chunk by chunk
        self.bytes = 0

    async def take(self, n: int) -> None:
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n
            self.bytes += n
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)


async def pump(reader, writer, link: Direction, not_before: float) -> None:
    """Reads as fast as the bucket allows, delivers each chunk one latency later, in order."""
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
            await link.take(len(data))
            queue.put_nowait((max(time.monotonic() + link.latency, not_before), data))
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
    p.add_argument("--burst", type=int, default=CHUNK)
    args = p.parse_args()
    host, port = args.to.rsplit(":", 1)
    latency = args.latency_ms / 1000
    rate = args.mbit * 1_000_000 / 8
    up = Direction(rate, latency, args.burst)
    down = Direction(rate, latency, args.burst)
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
