"""`kb search` wall time from the shell, with and without a running `kb serve` of the same data
folder (issue target: at most 1 s with a server on the 2-core development machine).

Builds a library from examples/ (or uses --data), starts `kb serve` on a free port, and times
`kb search QUERY` as a user runs it (a new process each time): asking the server, and with
KB_URL=none (loading the models in the process).

    .venv/bin/python bench/cli_latency.py [--data DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import machine

ROOT = Path(__file__).resolve().parents[1]
KB = [str(Path(sys.executable).with_name("kb"))]  # the console script a user runs
QUERIES = ["reward hacking in coding agents", "越狱攻击与防御", "deceptive alignment"]


def _run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([*KB, *args], env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"kb serve did not answer at {url} in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="an existing data folder (default: examples/)")
    parser.add_argument("--runs", type=int, default=5, help="searches timed per setting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-cli-") as tmp:
        data = args.data or Path(tmp) / "kb-data"
        env = {**os.environ, "KB_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
        if args.data is None:
            print("ingesting examples/ ...", file=sys.stderr)
            _run(["ingest", "-q", str(ROOT / "examples")], env)
        port = _free_port()
        server = subprocess.Popen(
            [*KB, "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{port}", 300)
            times = {"with the server": [], "without (KB_URL=none)": []}
            for n in range(args.runs):
                query = QUERIES[n % len(QUERIES)]
                times["with the server"].append(_run(["search", query], env))
                alone = {**env, "KB_URL": "none"}
                times["without (KB_URL=none)"].append(_run(["search", query], alone))
        finally:
            server.terminate()
            server.wait(30)
    print(f"`kb search` wall time, {args.runs} runs each ({machine()})\n")
    print("| setting | median s | max s |\n|---|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
