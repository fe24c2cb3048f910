"""Floods against a real node process: what an honest overseer sees, and what the node holds.

Starts two labs as `python -m pausenet run` processes (lab-b gossips with lab-a) in a temporary
directory, then, against lab-a:

1. GetView flood (issue 8 item 7). An honest overseer, on its own connection, makes GetView calls
   one every `--every` seconds: first with the node otherwise idle, then while another process (one
   client, one connection) keeps `--getview-flood` calls in flight. Prints the honest p50/p99
   for both, their ratio (goal: loaded p99 <= 2x unloaded), and how the flood calls ended.
2. Unauthenticated Exchange flood (issue 8 item 8). Another process keeps `--exchange-flood`
   Exchange calls of `--exchange-mib` MiB each in flight, with no session. Prints the node's
   resident memory (VmRSS) idle and its peak under the flood (goal: <= 2x idle), how the calls
   ended, and whether an honest peer (lab-b) still gets its statements through.
3. Oversized requests to small methods. The same, with `--oversized-flood` GetView, then
   Challenge, then reflection calls (none needs a key) of `--exchange-mib` MiB each, padded with an unknown
   field: methods that take a few bytes, read in turn and refused unparsed.

Linux only (/proc). Every figure is printed; nothing is asserted.

    python bench/flood.py
    python bench/flood.py --samples 1000 --getview-flood 1500 --exchange-flood 48
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc

from pausenet.client import AdminClient, OversightClient, read_admin_token
from pausenet.errors import PausenetError
from pausenet.ops.federation import init_federation
from pausenet.v1 import envelope_pb2, gossip_pb2, oversight_pb2, oversight_pb2_grpc

START_TIMEOUT_S = 30.0
OVERSIZED_METHODS = (
    "/pausenet.v1.Oversight/GetView",
    "/pausenet.v1.Gossip/Challenge",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
_BIG = 64 * 1024 * 1024


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the node processes -----------------------------------------------------------------------


class NodeProcess:
    def __init__(self, fed: Path, member: str, peers: tuple[str, ...] = ()) -> None:
        self.member = member
        config = fed / "node_configs" / f"{member}.bench.toml"
        config.write_text(
            f'member_id = "{member}"\n'
            'charter = "../charter.toml"\n'
            f'key = "../keys/{member}.key"\n'
            f'data_dir = "../data/{member}"\n'
            'listen = "127.0.0.1:0"\n'
            'admin_listen = "127.0.0.1:0"\n'
            f"peers = {json.dumps(list(peers))}\n"
            'log_level = "warning"\n'
        )
        self.stderr = (fed / f"{member}.err").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pausenet", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        if not ready or not self.proc.stdout.readline():
            self.stop()
            raise SystemExit(f"{member} did not start; see {self.stderr.name}")
        info = json.loads((fed / "data" / member / "node.json").read_text())
        self.address: str = info["address"]
        self.admin_address: str = info["admin_address"]
        self.token = read_admin_token(fed / "data" / member / "admin.token")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class Flooder:
    """This script run again as a flooding process, so that the flood and the honest overseer
    do not share an event loop."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "flooding" once its calls are in flight
        if line.strip() != "flooding":
            self.proc.kill()
            raise SystemExit(f"flooder did not start: {line!r}")

    def finish(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        ended: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return ended


# -- flooding processes -------------------------------------------------------------------------


async def flood_getview(address: str, concurrency: int) -> None:
    """Keep `concurrency` GetView calls in flight on one connection until SIGINT."""
    ended: Counter[str] = Counter()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with grpc.aio.insecure_channel(address, options=[("grpc.enable_retries", 0)]) as ch:
        stub = oversight_pb2_grpc.OversightStub(ch)

        async def worker() -> None:
            while not stop.is_set():
                try:
                    await stub.GetView(oversight_pb2.GetViewRequest(), timeout=60)
                    ended["OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    ended[exc.code().name] += 1

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(1.0)  # the flood is under way
        print("flooding", flush=True)
        await stop.wait()
        for w in workers:  # calls still queued or paced are dropped, not counted
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    print(json.dumps(dict(ended)), flush=True)


def padded(size: int) -> bytes:
    """`size` bytes that parse as any message: one unknown field (number 99)."""
    body = os.urandom(size)
    return _varint((99 << 3) | 2) + _varint(len(body)) + body


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


async def flood_exchange(
    address: str, concurrency: int, mib: float, method: str = "/pausenet.v1.Gossip/Exchange"
) -> None:
    """Keep `concurrency` unauthenticated calls of `mib` MiB to `method` in flight until SIGINT
    (an Exchange carries one statement of that size; any other method an unknown field)."""
    ended: Counter[str] = Counter()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    size = int(mib * 1024 * 1024)
    if method.endswith("/Exchange"):
        request = gossip_pb2.ExchangeRequest(
            items=gossip_pb2.Items(
                statements=[envelope_pb2.Envelope(payload=os.urandom(size), payload_type="x")]
            )
        ).SerializeToString()
    else:
        request = padded(size)
    options = [
        ("grpc.max_send_message_length", _BIG),
        ("grpc.enable_retries", 0),
        ("grpc.use_local_subchannel_pool", 1),  # a connection per channel
    ]
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(concurrency)]
    try:

        async def worker(ch: grpc.aio.Channel) -> None:
            call = ch.unary_unary(
                method,
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            while not stop.is_set():
                try:
                    await call(request, timeout=60)
                    ended["OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    ended[exc.code().name] += 1

        workers = [asyncio.create_task(worker(ch)) for ch in channels]
        await asyncio.sleep(2.0)
        print("flooding", flush=True)
        await stop.wait()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        for ch in channels:
            await ch.close()
    print(json.dumps(dict(ended)), flush=True)


# -- measurements -------------------------------------------------------------------------------


async def honest_latencies_ms(
    address: str, samples: int, every_s: float
) -> tuple[list[float], Counter[str]]:
    """An overseer polling GetView on its own connection, one call every `every_s` seconds:
    the latencies of the calls answered, and why the others failed."""
    out: list[float] = []
    failed: Counter[str] = Counter()
    async with OversightClient(address, timeout=60) as client:
        await client.get_view()
        for _ in range(samples):
            t = time.perf_counter()
            try:
                await client.get_view()
            except PausenetError as exc:
                failed[str(exc)[:80]] += 1
            took = time.perf_counter() - t
            out.append(took * 1000)
            await asyncio.sleep(max(0.0, every_s - took))
    return out, failed


def show_latency(name: str, got: tuple[list[float], Counter[str]]) -> tuple[float, float]:
    values, failed = got
    p50, p99 = percentile(values, 50), percentile(values, 99)
    print(f"  honest GetView {name:<8} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={len(values)})")
    if failed:
        print(f"    honest calls that failed: {dict(failed)}")
    return p50, p99


async def getview_bench(node: NodeProcess, samples: int, concurrency: int, every_s: float) -> None:
    print(
        f"GetView flood: one client keeps {concurrency} GetView calls in flight; an honest"
        f" overseer calls every {every_s * 1000:g} ms"
    )
    idle = await honest_latencies_ms(node.address, samples, every_s)
    i50, i99 = show_latency("unloaded", idle)
    flooder = Flooder("--role", "getview", node.address, str(concurrency))
    try:
        loaded = await honest_latencies_ms(node.address, samples, every_s)
    finally:
        ended = flooder.finish()
    l50, l99 = show_latency("flooded", loaded)
    print(
        f"  ratio flooded/unloaded: p50 {l50 / i50:.2f}x   p99 {l99 / i99:.2f}x   (goal p99 <= 2x)"
    )
    print(f"  flood calls ended: {dict(sorted(ended.items()))}")


async def exchange_bench(
    node: NodeProcess,
    peer: NodeProcess,
    concurrency: int,
    mib: float,
    method: str = "/pausenet.v1.Gossip/Exchange",
) -> None:
    name = method.rpartition("/")[2]
    print(f"{name} flood: {concurrency} unauthenticated {name} calls of {mib} MiB in flight")
    await asyncio.sleep(2.0)
    idle = rss_kib(node.proc.pid)
    print(f"  node RSS idle              {idle / 1024:8.1f} MiB")
    flooder = Flooder("--role", "exchange", node.address, str(concurrency), str(mib), method)
    peak = rss_kib(node.proc.pid)
    got_through = False
    try:
        async with AdminClient(peer.admin_address, peer.token) as admin:
            st = await admin.attest_trigger("rsi-detected", note="during the flood")
        loop = asyncio.get_running_loop()
        until = loop.time() + 10.0
        async with OversightClient(node.address, timeout=30) as client:
            while loop.time() < until:
                peak = max(peak, rss_kib(node.proc.pid))
                view = await client.get_view()
                head = next(m.head_seq for m in view.members if m.id == peer.member)
                got_through = got_through or head >= st.seq
                await asyncio.sleep(0.2)
    finally:
        ended = flooder.finish()
    print(
        f"  node RSS peak under flood  {peak / 1024:8.1f} MiB   ({peak / idle:.2f}x idle; goal <= 2x)"
    )
    await asyncio.sleep(2.0)
    print(f"  node RSS 2 s after         {rss_kib(node.proc.pid) / 1024:8.1f} MiB")
    print(f"  flood calls ended: {dict(sorted(ended.items()))}")
    print(f"  an honest peer's statement reached the node during the flood: {got_through}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pausenet-flood-") as tmp:
        fed = Path(tmp) / "fed"
        init_federation(fed, 2, 0)
        nodes: list[NodeProcess] = []
        try:
            nodes.append(NodeProcess(fed, "lab-a"))
            nodes.append(NodeProcess(fed, "lab-b", peers=(nodes[0].address,)))
            if args.getview_flood:
                await getview_bench(nodes[0], args.samples, args.getview_flood, args.every)
            if args.exchange_flood:
                await exchange_bench(nodes[0], nodes[1], args.exchange_flood, args.exchange_mib)
            if args.oversized_flood:
                for method in OVERSIZED_METHODS:
                    await exchange_bench(
                        nodes[0], nodes[1], args.oversized_flood, args.exchange_mib, method
                    )
        finally:
            for n in nodes:
                n.stop()


def cli() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, address, *rest = sys.argv[2:]
        if role == "getview":
            asyncio.run(flood_getview(address, int(rest[0])))
        else:
            asyncio.run(flood_exchange(address, int(rest[0]), float(rest[1]), *rest[2:]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=400, help="honest GetView calls per phase")
    p.add_argument("--every", type=float, default=0.05, help="seconds between honest calls")
    p.add_argument("--getview-flood", type=int, default=1500, help="GetView calls in flight")
    p.add_argument("--exchange-flood", type=int, default=48, help="Exchange calls in flight")
    p.add_argument("--exchange-mib", type=float, default=3.9, help="size of each Exchange")
    p.add_argument(
        "--oversized-flood", type=int, default=48, help="GetView/Challenge calls in flight"
    )
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    cli()
