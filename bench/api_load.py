"""Load test of the HTTP API: concurrent searches, first idle, then while an ingest job runs.

Starts `kb serve` on loopback in a subprocess (temp data dir, an API key, an import root),
seeds it with examples/*.pdf, measures searches from several threads (mixed English and
Chinese queries) while the server is idle, then starts an ingest job over a folder of PDFs
(the smallest of ../shared/data/pdfs by default, copied under the import root) and measures
the same searches until the job ends. Prints throughput, p50/p95/p99 latency, error count
and the job's outcome.

With ``--hostile``, a third run searches as long as the idle one while hostile traffic is
mixed in: clients streaming oversized bodies without a key, 50 uploads waiting in the ingest
queue behind each other, and slow connections that send a byte at a time; it prints the
searches' p99 and error count beside the clean (idle) run's, and what each hostile client got.

    .venv/bin/python bench/api_load.py --threads 4 --job-pdfs 4
    .venv/bin/python bench/api_load.py --threads 4 --job-pdfs 4 --hostile
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_PDFS = ROOT.parent / "shared" / "data" / "pdfs"
KEY = "bench-" + "k" * 26
QUERIES = [
    "reward hacking in coding agents",
    "奖励黑客",
    "how do we detect deceptive alignment?",
    "越狱攻击的防御",
    "dangerous capability evaluations biology",
    "权力寻求与关机回避",
    "scalable oversight debate",
    "大模型安全风险",
    "prompt injection in RAG applications",
    "数据安全风险分析",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4, help="concurrent search clients")
    parser.add_argument("--idle-s", type=float, default=20.0, help="seconds of idle searching")
    parser.add_argument("--job-pdfs", type=int, default=4, help="smallest shared PDFs to ingest")
    parser.add_argument("--pdfs", type=Path, default=SHARED_PDFS, help="folder of PDFs for the job")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--job-timeout-s", type=float, default=600.0, help="give up on the job after this long"
    )
    parser.add_argument("--hostile", action="store_true", help="add a run with hostile traffic")
    parser.add_argument("--uploads", type=int, default=50, help="hostile: waiting uploads")
    parser.add_argument("--slow", type=int, default=100, help="hostile: slow connections")
    parser.add_argument("--oversized", type=int, default=4, help="hostile: oversized clients")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-api-load-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    root = tmp / "imports"
    job_dir = root / "batch"
    job_dir.mkdir(parents=True)
    pdfs = sorted(args.pdfs.glob("*.pdf"), key=lambda p: p.stat().st_size)[: args.job_pdfs]
    for pdf in pdfs:
        shutil.copy2(pdf, job_dir / pdf.name)
    port = _free_port()
    env = {**os.environ, "KB_DATA_DIR": str(tmp / "data"), "KB_API_KEYS": KEY,
           "KB_IMPORT_ROOTS": str(root), "KB_PORT": str(port)}  # fmt: skip
    cmd = [sys.executable, "-c", "from kb.cli import main; main()", "serve",
           "--seed", str(ROOT / "examples")]  # fmt: skip
    log = (tmp / "server.log").open("w")
    started = time.perf_counter()
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        papers = _wait_ready(base, server, timeout=900)
        print(f"server up with {papers} papers after {time.perf_counter() - started:.0f} s")
        idle = _drive(base, args, stop_when=_after(args.idle_s))
        _report("idle", idle)
        with httpx.Client(base_url=base, timeout=60) as c:
            auth = {"Authorization": f"Bearer {KEY}"}
            job = c.post("/api/ingest-jobs", data={"folder": str(job_dir)}, headers=auth).json()
        kib = sum(p.stat().st_size for p in pdfs) >> 10
        print(f"job {job['id']}: {job['total']} PDFs ({kib} KiB)")
        done: dict = {}
        finished = _job_finished(base, job["id"], done, args.job_timeout_s)
        busy = _drive(base, args, stop_when=finished)
        _report("during ingest job", busy)
        print(
            f"job: {done.get('status')} in {_seconds(done):.0f} s, counts {done.get('counts')}, "
            f"error {done.get('error')}"
        )
        for f in done.get("files", []):
            if f["status"] == "failed":
                print(f"  failed: {f['name']}: {f['detail']}")
        if args.hostile:
            hostile = _hostile(base, port, args)
            _report("hostile", hostile)
            _compare(idle, hostile)
        print(f"machine: {machine()}")
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        text = (tmp / "server.log").read_text(errors="replace")
        if KEY in text:
            print("WARNING: the API key appears in the server log")
        if server.returncode not in (0, -15):
            print(text[-3000:])


def _drive(base: str, args: argparse.Namespace, stop_when) -> dict:
    """Search from ``args.threads`` threads until ``stop_when()``; latencies and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            i = n
            while not stop.is_set():
                q = QUERIES[i % len(QUERIES)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = c.get("/api/search", params={"q": q, "k": args.k})
                    ok = r.status_code == 200 and "results" in r.json()
                    why = f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as e:
                    ok, why = False, repr(e)
                with lock:
                    (latencies.append(time.perf_counter() - t0) if ok else errors.append(why))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while not stop_when():
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors, "seconds": time.perf_counter() - t0}


def _report(label: str, result: dict) -> None:
    lat = sorted(result["latencies"])
    n, secs = len(lat), result["seconds"]
    if not lat:
        print(f"{label}: no successful searches; errors {len(result['errors'])}")
        return
    q = statistics.quantiles(lat, n=100, method="inclusive") if n > 1 else [lat[0]] * 99
    print(
        f"{label}: {n} searches in {secs:.1f} s = {n / secs:.1f}/s; latency ms p50 "
        f"{q[49] * 1000:.0f} p95 {q[94] * 1000:.0f} p99 {q[98] * 1000:.0f} max "
        f"{lat[-1] * 1000:.0f}; errors {len(result['errors'])}"
    )
    for why in result["errors"][:5]:
        print(f"  error: {why}")


def _p99_ms(result: dict) -> float:
    lat = sorted(result["latencies"])
    if len(lat) < 2:
        return float("nan")
    return statistics.quantiles(lat, n=100, method="inclusive")[98] * 1000


def _compare(clean: dict, hostile: dict) -> None:
    print(
        f"searches p99: clean {_p99_ms(clean):.0f} ms, hostile {_p99_ms(hostile):.0f} ms; "
        f"errors: clean {len(clean['errors'])}, hostile {len(hostile['errors'])}"
    )


def _hostile(base: str, port: int, args: argparse.Namespace) -> dict:
    """Search for ``args.idle_s`` seconds while hostile clients run; their outcomes printed."""
    stop = threading.Event()
    got: dict[str, list] = {"oversized": [], "uploads": [], "slow": []}
    lock = threading.Lock()

    def note(kind: str, what: object) -> None:
        with lock:
            got[kind].append(what)

    def oversized() -> None:  # 300 MiB PATCH bodies without a key, again and again
        while not stop.is_set():
            note("oversized", _stream_body(port, "/api/papers/1", 300 << 20))

    def upload(n: int) -> None:
        pdfs = sorted(args.pdfs.glob("*.pdf"), key=lambda p: p.stat().st_size)[: args.job_pdfs]
        pdf = pdfs[n % len(pdfs)]
        auth = {"Authorization": f"Bearer {KEY}"}
        try:
            with httpx.Client(base_url=base, timeout=args.job_timeout_s) as c:
                files = {"file": (f"{n}-{pdf.name}", pdf.read_bytes(), "application/pdf")}
                note("uploads", c.post("/api/papers", files=files, headers=auth).status_code)
        except httpx.HTTPError as e:
            note("uploads", type(e).__name__)

    def slow() -> None:  # a request's headers, one byte a second
        head = b"GET /api/search?q=slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                for byte in head:
                    if stop.is_set():
                        break
                    sock.sendall(bytes([byte]))
                    time.sleep(1.0)
                note("slow", "held")
        except OSError as e:
            note("slow", f"closed by server ({type(e).__name__})")

    workers = [threading.Thread(target=oversized, daemon=True) for _ in range(args.oversized)]
    workers += [
        threading.Thread(target=upload, args=(n,), daemon=True) for n in range(args.uploads)
    ]
    workers += [threading.Thread(target=slow, daemon=True) for _ in range(args.slow)]
    for w in workers:
        w.start()
    result = _drive(base, args, stop_when=_after(args.idle_s))
    stop.set()
    time.sleep(2)
    with lock:
        sizes = [r for r in got["oversized"] if isinstance(r, tuple)]
        statuses = _counts(str(status) for status, _ in sizes)
        most = max((sent for _, sent in sizes), default=0) >> 20
        print(f"  oversized bodies without a key: answers {statuses}; at most {most} MiB sent")
        answered = _counts(map(str, got["uploads"]))
        print(f"  uploads answered in the window: {answered} of {args.uploads} (the rest wait")
        print("  in the ingest queue, holding no server thread)")
        print(f"  slow connections: {_counts(got['slow'])} of {args.slow}")
    return result


def _stream_body(port: int, path: str, total: int) -> tuple[int, int] | str:
    """Send a PATCH with ``total`` declared bytes until the server answers: (status, sent)."""
    head = (f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {total}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    block, sent = b"[" * (1 << 16), 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head)
            sock.setblocking(False)
            reply = b""
            while sent < total and not reply:
                try:
                    sent += sock.send(block)
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
                try:
                    reply = sock.recv(1 << 12)
                except BlockingIOError:
                    pass
            sock.setblocking(True)
            reply = reply or sock.recv(1 << 12)
            return int(reply.split()[1]), sent
    except (OSError, ValueError, IndexError) as e:
        return type(e).__name__


def _counts(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _after(seconds: float):
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def _job_finished(base: str, job_id: str, out: dict, timeout_s: float):
    client = httpx.Client(base_url=base, timeout=60)
    last = [0.0]
    deadline = time.monotonic() + timeout_s

    def check() -> bool:
        if time.monotonic() > deadline:
            out.update(status="unfinished", error=f"still running after {timeout_s:.0f} s")
            client.close()
            return True
        if time.monotonic() - last[0] < 1.0:
            return False
        last[0] = time.monotonic()
        job = client.get(f"/api/ingest-jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            out.update(job)
            client.close()
            return True
        return False

    return check


def _seconds(job: dict) -> float:
    from datetime import datetime

    if not job.get("started_at") or not job.get("finished_at"):
        return float("nan")
    start = datetime.fromisoformat(job["started_at"])
    return (datetime.fromisoformat(job["finished_at"]) - start).total_seconds()


def _wait_ready(base: str, server: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"kb serve exited with {server.returncode}")
        try:
            return int(httpx.get(f"{base}/healthz", timeout=5).json()["papers"])
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(1)
    raise SystemExit("kb serve did not come up in time")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
