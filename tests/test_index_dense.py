"""The model is shared by searches and an ingest's passages, taken in turn (index.dense)."""

from __future__ import annotations

import json
import threading
import time

from index.dense import FairLock


class SlowEmbedder:
    """Wraps the fake embedder: each call takes a while, and two at once is an error."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint
        self.batch_size = 32
        self.busy = threading.Lock()
        self.overlaps = 0

    def encode(self, texts, *, kind, progress=False):
        if not self.busy.acquire(blocking=False):
            self.overlaps += 1
            self.busy.acquire()
        try:
            time.sleep(self.delay)
            return self.inner.encode(texts, kind=kind)
        finally:
            self.busy.release()


def test_fair_lock_serves_in_arrival_order():
    lock, order = FairLock(), []
    lock.__enter__()
    threads = []

    def take(i: int) -> None:
        with lock:
            order.append(i)

    for i in range(5):
        t = threading.Thread(target=take, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # arrive one after another
    lock.__exit__()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_a_stream_of_queries_does_not_starve_an_ingest(library, tmp_path):
    feed = tmp_path / "f.jsonl"
    feed.write_text(json.dumps({"key": "a", "title": "Reward hacking", "abstract": "Agents."}))
    library.ingest([feed])
    side = library.encoders()[0]
    slow = SlowEmbedder(side.embedder, delay=0.01)
    side.embedder = slow
    stop = threading.Event()
    waits: list[float] = []

    def search_forever() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            side.embed_query("reward hacking", "en")
            waits.append(time.perf_counter() - started)

    searchers = [threading.Thread(target=search_forever) for _ in range(4)]
    for t in searchers:
        t.start()
    done = threading.Event()
    ingest = threading.Thread(
        target=lambda: (side.embed_passages(["passage text"] * 80), done.set())
    )
    ingest.start()
    ingest.join(20)
    stop.set()
    for t in searchers:
        t.join(5)
    assert done.is_set(), "passages starved by queries"
    assert slow.overlaps == 0  # never two model calls at once
    # a query waits for at most one passage slice plus the queries ahead of it
    assert max(waits) < 1.0
