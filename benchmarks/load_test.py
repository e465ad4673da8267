"""Bounded load test of `bertdistill serve` on loopback: requests/s, latency p50/p99 and errors per endpoint.

    python benchmarks/load_test.py RUN_DIR [--seconds 6] [--connections 16] [--out benchmarks/SERVING.md]

Starts the server (one uvicorn process, access log off) on a free 127.0.0.1 port, then:
1. records each model's server-side time (the API's `time_ms`) over sequential single-text requests;
2. runs wrk (`apt-get install wrk`) against POST /api/models/<name>/predict for every model, then POST
   /api/predict (every model plus the comparisons with the teacher), then GET /api/health.
Everything stops within 60 s: an endpoint that no longer fits the budget is skipped and reported as skipped.
wrk and the server share this machine's cores, so the rates describe this setup, not the server alone.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 60.0
TEXT = ("@user honestly the refs were a joke tonight, but we still played like garbage in the second half. "
        "next week will be better")
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run_dir: Path, port: int, deadline: float) -> subprocess.Popen:
    """`bertdistill serve` in a subprocess; returns once /api/health answers."""
    server = subprocess.Popen([sys.executable, "-m", "bertdistill.cli", "serve", str(run_dir), "--port", str(port),
                               "--no-access-log"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"load_test: the server did not start:\n{server.stderr.read().decode(errors='replace')}")
        try:
            request("127.0.0.1", port, "GET", "/api/health")
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("load_test: the server did not answer in time")


def request(host: str, port: int, method: str, path: str, body: dict | None = None,
            connection: http.client.HTTPConnection | None = None) -> dict:
    connection = connection or http.client.HTTPConnection(host, port, timeout=30)
    payload = None if body is None else json.dumps(body)
    connection.request(method, path, payload, {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
    return json.loads(data)


def server_side_times(port: int, models: list[str], count: int) -> dict[str, dict]:
    """p50/p99 of the API's own `time_ms` per model, over sequential single-text requests on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = {}
    for name in models:
        n = max(20, count // 10) if name == "teacher" else count
        samples = [request("127.0.0.1", port, "POST", f"/api/models/{name}/predict", {"text": TEXT},
                           connection)["time_ms"] for _ in range(n)]
        times[name] = {"p50": float(np.percentile(samples, 50)), "p99": float(np.percentile(samples, 99)), "n": n}
    connection.close()
    return times


def run_wrk(url: str, body: dict | None, seconds: int, connections: int) -> dict:
    """One wrk run (1 thread); returns requests/s, p50/p99 in ms, request and error counts."""
    with tempfile.TemporaryDirectory() as folder:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        if body is not None:  # wrk sends a body only from a Lua script
            script = Path(folder) / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
                              'wrk.headers["Content-Type"] = "application/json"\n', encoding="utf-8")
            command += ["-s", str(script)]
        output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 15,
                                check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict:
    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(\w+)", output, re.MULTILINE).groups()
        return float(value) * UNITS_MS[unit]

    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": latency("50"), "p99": latency("99"),
            "requests": int(re.search(r"(\d+) requests in", output).group(1)),
            "errors": (sum(map(int, sockets.groups())) if sockets else 0) + (int(non_2xx.group(1)) if non_2xx else 0)}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def http_implementation() -> str:
    """What uvicorn picks with its defaults ("auto"): httptools and uvloop when installed, else h11 and asyncio."""
    found = []
    for module, fallback in (("httptools", "h11"), ("uvloop", "asyncio")):
        try:
            __import__(module)
            found.append(module)
        except ImportError:
            found.append(fallback)
    return " + ".join(found)


def describe_run(run_dir: Path) -> str:
    summary = json.loads((run_dir / "dataset.json").read_text(encoding="utf-8"))
    rows = summary["rows"]
    return (f"{summary['name']} ({summary['task']}), train / val / test rows {rows['train']} / {rows['val']} / "
            f"{rows['test']}")


def markdown(rows: list[dict], times: dict, args, context: dict) -> str:
    lines = [
        "## Serving load test", "",
        (f"`python benchmarks/load_test.py {args.run_dir} --seconds {args.seconds} --connections {args.connections}`"
        f" — {context['date']}, {context['machine']}, load average before the test {context['load']}. "
        f"Run: {context['run']}. "
        f"One uvicorn process ({context['http']}), access log off; wrk 1 thread, {args.connections} connections, "
        f"{args.seconds} s per endpoint, on loopback, sharing the cores with the server (so the rates are for this "
        f"setup, not the server alone). Body: one text of {len(TEXT)} characters. Server-side time is the API's "
        "own `time_ms` (raw string in, probabilities out), over sequential requests."), "",
        "| endpoint | requests/s | p50 ms | p99 ms | requests | errors | server-side p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        server = times.get(row["model"] or "")
        side = f"{server['p50']:.3f} / {server['p99']:.3f}" if server else "–"
        if row.get("skipped"):
            lines.append(f"| `{row['endpoint']}` | skipped: over the {BUDGET_S:.0f} s budget | | | | | {side} |")
            continue
        lines.append(f"| `{row['endpoint']}` | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | "
                     f"{row['requests']} | {row['errors']} | {side} |")
    students = [row for row in rows if row["model"] not in (None, "teacher") and not row.get("skipped")]
    if students:
        slowest = max(times[row["model"]]["p50"] for row in students)
        lines += ["", f"Every model but the teacher: at least {min(row['rps'] for row in students):.0f} requests/s "
                  f"(target ≥ 500), server-side p50 at most {slowest:.3f} ms (target ≤ 1 ms), "
                  f"{sum(row['errors'] for row in rows if not row.get('skipped'))} errors in all. The single-model "
                  "route answers a prediction expected under 2 ms on the event loop (a thread-pool hop would cost "
                  "as much); the teacher and `/api/predict` run in the thread pool."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (e.g. runs/bench/tweeteval-offensive)")
    parser.add_argument("--seconds", type=int, default=6, help="wrk duration per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--samples", type=int, default=200, help="sequential requests per model for server time")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "SERVING.md")
    args = parser.parse_args()
    started = time.monotonic()
    deadline = started + BUDGET_S
    context = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{platform.machine()} {cpu_name()}, {os.cpu_count()} cores",
               "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()), "http": http_implementation(),
               "run": describe_run(args.run_dir)}
    port = free_port()
    server = start_server(args.run_dir, port, started + 40)
    try:
        models = [m["name"] for m in request("127.0.0.1", port, "GET", "/api/models")["models"]]
        times = server_side_times(port, models, args.samples)
        targets = [(f"POST /api/models/{name}/predict", name, f"/api/models/{name}/predict", {"text": TEXT})
                   for name in models]
        targets += [("POST /api/predict (all models)", None, "/api/predict", {"text": TEXT}),
                    ("GET /api/health", None, "/api/health", None)]
        rows = []
        for endpoint, model, path, body in targets:
            if time.monotonic() + args.seconds + 2 > deadline:
                rows.append({"endpoint": endpoint, "model": model, "skipped": True})
                continue
            result = run_wrk(f"http://127.0.0.1:{port}{path}", body, args.seconds, args.connections)
            rows.append({"endpoint": endpoint, "model": model, **result})
            print(f"{endpoint}: {result['rps']:.0f} req/s, p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, "
                  f"{result['errors']} errors", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    args.out.write_text(markdown(rows, times, args, context), encoding="utf-8")
    print(f"wrote {args.out} in {time.monotonic() - started:.0f} s")
    return 1 if any(row.get("errors") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
