"""`generate serve` under load, on loopback: throughput beside `generate sample -N 32`, latency, and a soak.

    python benchmarks/serve.py [--model shakespeare] [--clients 32] [--length 1000] [--soak-seconds 600] [--mix]

1. Load: `--clients` streaming clients at once (prime "ROMEO:", seeds 1..N),
   each over its own bare asyncio connection (a client this light leaves the
   two shared cores to the server). Reports aggregate sampled characters per
   second, each client's time to its first sampled character, and the p99
   gap between deliveries to one client. The baseline, in this process and
   this run: the same model and length as one `-N 32` batch through the
   command line's pipeline (`LoadedModel.samples`), model loaded once, and
   `generate sample -N 32` itself, start-up included.
   With `--mix`, a beam search (16 beams, 300 characters) and a co-writing
   session (start, take, reroll, undo, take, save) run again and again
   beside the streams for the whole load phase; their completions are counted.
2. Warm single request: time to the first sampled character, 20 requests.
3. Soak (`--soak-seconds`, 0 to skip): 8 clients send a mix of streamed,
   plain, cancelled-mid-stream and bad requests, and co-writing sessions
   over the WebSocket (start, take, reroll, undo, take, save). Reports outcomes by status,
   the server's resident memory after the first minute and at the end, and
   checks that sampled texts reproduce with `generate sample` (a sample of
   up to 24 of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx


def start_server(model: str) -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen([sys.executable, "-m", "generate", "serve", model, "--port", "0"], stderr=subprocess.PIPE, text=True)
    line = child.stderr.readline()
    found = re.search(r"at (http://\S+)", line)
    if not found:
        raise SystemExit(f"the server did not start: {line}{child.stderr.read()}")
    return child, found.group(1)


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Deliveries:
    """What a streamed request received: when each piece of sampled text came, and the record at the end."""

    def __init__(self):
        self.started, self.times, self.record, self.events = time.perf_counter(), [], None, 0

    def take(self, data: bytes | str) -> None:
        """One event's `data:` payload."""
        event = json.loads(data)
        self.events += 1
        if "record" in event:
            self.record = event["record"]
        elif "text" in event and self.events > 1:  # the first event is the prime, sent before anything is sampled
            self.times.append((time.perf_counter() - self.started, len(event["text"])))

    def result(self, status) -> dict:
        return {"status": status, "deliveries": self.times, "record": self.record}


async def stream_one(http: httpx.AsyncClient, body: dict, stop_after: int | None = None) -> dict:
    """One streamed request: times of each delivery of sampled text, and the record at the end."""
    received = Deliveries()
    async with http.stream("POST", "/v1/samples", json={**body, "stream": True}) as response:
        if response.status_code != 200:
            return {"status": response.status_code}
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                received.take(line[6:])
            if stop_after is not None and received.events >= stop_after:
                return {"status": "cancelled"}
    return received.result(200)


async def raw_stream(address: str, body: dict) -> dict:
    """One streamed request over a bare asyncio connection (HTTP/1.1, chunked), so the client costs the shared
    cores as little as possible: times of each delivery of sampled text."""
    host, port = address.removeprefix("http://").rsplit(":", 1)
    received = Deliveries()
    reader, writer = await asyncio.open_connection(host, int(port))
    payload = json.dumps({**body, "stream": True}).encode()
    writer.write(b"POST /v1/samples HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (host.encode(), len(payload), payload))
    status = int((await reader.readline()).split()[1])
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    buffer = b""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            break
        buffer += await reader.readexactly(size + 2)
        *complete, buffer = buffer.split(b"\n\n")
        for block in complete:
            if block.strip().startswith(b"data: "):
                received.take(block.strip()[6:])
    writer.close()
    return received.result(status)


async def co_write_session(address: str, model: str, seed: int) -> str:
    from websockets.asyncio.client import connect

    async with connect(address.replace("http://", "ws://") + "/v1/write") as socket:
        for message in ({"action": "start", "model": model, "options": {"seed": seed, "text": "ROMEO:"}},
                        {"action": "take", "index": 0}, {"action": "reroll"}, {"action": "undo"},
                        {"action": "take", "index": 1}, {"action": "save"}):
            await socket.send(json.dumps(message))
            reply = json.loads(await socket.recv())
            if reply["type"] == "error":
                return "write error"
    return "write ok"


async def mixed_work(address: str, model: str, done: asyncio.Event, counts: Counter) -> None:
    """Beams and co-writing sessions, again and again, until `done`."""
    async def beams(http: httpx.AsyncClient, number: int) -> None:
        while not done.is_set():
            response = await http.post("/v1/samples", json={"model": model, "prime": "ROMEO:", "length": 300, "beam": 16})
            counts[f"beam {response.status_code}"] += 1

    async def writing(number: int) -> None:
        seed = number * 1000
        while not done.is_set():
            counts[await co_write_session(address, model, seed)] += 1
            seed += 1

    async with httpx.AsyncClient(base_url=address, timeout=300) as http:
        await asyncio.gather(beams(http, 0), writing(0))


async def load(address: str, model: str, clients: int, length: int, mix: bool = False) -> dict:
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=address, timeout=300, limits=limits) as http:
        await stream_one(http, {"model": model, "prime": "ROMEO:", "length": 20, "seed": 0})  # warm
        done, mixed = asyncio.Event(), Counter()
        beside = asyncio.ensure_future(mixed_work(address, model, done, mixed)) if mix else None
        if mix:
            await asyncio.sleep(2)  # the beams and sessions under way first
        started = time.perf_counter()
        results = await asyncio.gather(*(raw_stream(address, {"model": model, "prime": "ROMEO:", "length": length, "seed": seed})
                                         for seed in range(1, clients + 1)))
        wall = time.perf_counter() - started
        if beside is not None:
            done.set()
            await beside
        singles = []
        for seed in range(20):
            result = await raw_stream(address, {"model": model, "prime": "ROMEO:", "length": 50, "seed": 1000 + seed})
            singles.append(result["deliveries"][0][0])
    firsts = [r["deliveries"][0][0] for r in results]
    gaps = sorted(b[0] - a[0] for r in results for a, b in zip(r["deliveries"], r["deliveries"][1:]))
    chars = sum(n for r in results for _, n in r["deliveries"])
    return {"chars_per_s": chars / wall, "first_max": max(firsts), "first_median": statistics.median(firsts),
            "gap_p99": gaps[int(0.99 * (len(gaps) - 1))], "gap_max": gaps[-1], "single_first_median": statistics.median(singles),
            "single_first_max": max(singles), "wall": wall, "chars": chars, "mixed": dict(mixed)}


def baseline(model: str, clients: int, length: int) -> dict:
    from generate.pipeline.loaded import LoadedModel
    from generate.sampling.options import SampleOptions

    loaded = LoadedModel(model)
    loaded.run(loaded.prepare(SampleOptions(prime="ROMEO:", length=20, num_samples=clients, seed=0)))  # warm
    started = time.perf_counter()
    loaded.run(loaded.prepare(SampleOptions(prime="ROMEO:", length=length, num_samples=clients, seed=1)))
    in_process = clients * length / (time.perf_counter() - started)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "generate", "sample", model, "--prime", "ROMEO:", "-n", str(length), "-N", str(clients),
                    "--seed", "1"], check=True, capture_output=True)
    return {"pipeline_chars_per_s": in_process, "cli_chars_per_s": clients * length / (time.perf_counter() - started)}


async def soak(address: str, model: str, seconds: float, pid: int) -> dict:
    outcomes, kept, memory = Counter(), [], []
    rng = random.Random(0)
    bad_bodies = [{"model": "/etc/passwd"}, {"model": model, "top_k": -1}, {"model": model, "length": "x"},
                  {"model": model, "temprature": 1}, {"model": model, "prime": "§"}]
    end = time.monotonic() + seconds

    async def worker(http: httpx.AsyncClient, number: int) -> None:
        while time.monotonic() < end:
            kind = rng.choice(["stream", "stream", "plain", "cancel", "bad", "write"])
            if kind == "write":
                outcomes[await co_write_session(address, model, rng.randint(0, 10**6))] += 1
                continue
            body = {"model": model, "prime": rng.choice(["ROMEO:", "JULIET:", "\n"]), "length": rng.randint(50, 600),
                    "seed": rng.randint(0, 10**6), "temperature": rng.choice([0.6, 0.8, 1.0]), "top_k": rng.choice([0, 20])}
            if kind == "stream":
                result = await stream_one(http, body)
                outcomes[f"stream {result['status']}"] += 1
                if result["status"] == 200:
                    kept.append((body, result["record"]["text"]))
            elif kind == "cancel":
                result = await stream_one(http, body, stop_after=rng.randint(2, 6))
                outcomes[f"cancel {result['status']}"] += 1
            elif kind == "plain":
                response = await http.post("/v1/samples", json=body)
                outcomes[f"plain {response.status_code}"] += 1
                if response.status_code == 200:
                    kept.append((body, response.json()["samples"][0]["text"]))
            else:
                response = await http.post("/v1/samples", json=rng.choice(bad_bodies))
                outcomes[f"bad {response.status_code}"] += 1

    async def watch_memory() -> None:
        while time.monotonic() < end:
            memory.append((time.monotonic(), resident_mb(pid)))
            await asyncio.sleep(5)

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=address, timeout=300) as http:
        await asyncio.gather(watch_memory(), *(worker(http, n) for n in range(8)))
    after_warmup = [mb for at, mb in memory if at - started >= min(60, seconds / 3)] or [mb for _, mb in memory[-1:]]
    return {"outcomes": dict(sorted(outcomes.items())), "kept": kept,
            "rss_after_warmup": after_warmup[0] if after_warmup else None, "rss_end": resident_mb(pid),
            "rss_max": max((mb for _, mb in memory), default=0)}


def reproduces(model: str, body: dict, text: str) -> bool:
    args = [sys.executable, "-m", "generate", "sample", model, "--prime", body["prime"], "-n", str(body["length"]),
            "--seed", str(body["seed"]), "-t", str(body["temperature"]), "--top-k", str(body["top_k"]), "--json"]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)["text"] == text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shakespeare")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument("--mix", action="store_true", help="beams and co-writing sessions beside the streams")
    args = parser.parse_args()
    base = baseline(args.model, args.clients, args.length)
    child, address = start_server(args.model)
    try:
        measured = asyncio.run(load(address, args.model, args.clients, args.length, args.mix))
        print(f"{args.clients} streaming clients, {args.length} characters each: {measured['chars_per_s']:,.0f} chars/s "
              f"({measured['chars']} in {measured['wall']:.2f} s)")
        print(f"  the pipeline, -N {args.clients} in one batch: {base['pipeline_chars_per_s']:,.0f} chars/s; served/pipeline "
              f"{measured['chars_per_s'] / base['pipeline_chars_per_s']:.2f}")
        print(f"  generate sample -N {args.clients}, start-up included: {base['cli_chars_per_s']:,.0f} chars/s; served/cli "
              f"{measured['chars_per_s'] / base['cli_chars_per_s']:.2f}")
        print(f"  first character: median {measured['first_median'] * 1000:.0f} ms, slowest {measured['first_max'] * 1000:.0f} ms")
        print(f"  gap between deliveries to one client: p99 {measured['gap_p99'] * 1000:.0f} ms, "
              f"longest {measured['gap_max'] * 1000:.0f} ms")
        if args.mix:
            print(f"  beside them, run again and again: {measured['mixed']}")
        print(f"warm single request, first character: median {measured['single_first_median'] * 1000:.1f} ms, "
              f"slowest {measured['single_first_max'] * 1000:.1f} ms (20 requests)")
        if args.soak_seconds > 0:
            result = asyncio.run(soak(address, args.model, args.soak_seconds, child.pid))
            print(f"soak, {args.soak_seconds:.0f} s, 8 clients: {result['outcomes']}")
            growth = result["rss_end"] / result["rss_after_warmup"] - 1 if result["rss_after_warmup"] else float("nan")
            print(f"  resident memory: {result['rss_after_warmup']:.0f} MB after warm-up, {result['rss_end']:.0f} MB at the end "
                  f"({growth:+.1%}), at most {result['rss_max']:.0f} MB")
            checked = random.Random(1).sample(result["kept"], min(24, len(result["kept"])))
            same = sum(reproduces(args.model, body, text) for body, text in checked)
            print(f"  {same} of {len(checked)} sampled texts (of {len(result['kept'])} completed) reproduce with generate sample")
    finally:
        child.terminate()
        child.wait(timeout=60)


if __name__ == "__main__":
    main()
