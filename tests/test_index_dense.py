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


def _feed(tmp_path, n=12):
    feed = tmp_path / "feed.jsonl"
    rows = [
        {"key": f"p{i}", "title": f"Reward hacking study {i}", "abstract": f"Agents game {i}.",
         "lang": "en"}
        for i in range(n)
    ] + [
        {"key": f"z{i}", "title": f"奖励黑客研究 {i}", "abstract": f"智能体钻空子 {i}。",
         "lang": "zh"}
        for i in range(n)
    ]  # fmt: skip
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return feed


def test_a_start_reuses_the_saved_score_statistics(settings, tmp_path, monkeypatch):
    """Computing the per-language statistics reads every vector; a new process reuses the
    ones saved with the index (same model, alignment and settings) and ranks the same."""
    from index.calibration import LanguageStats
    from index.dense import STATS_FILE
    from kb.library.facade import Library
    from kb.library.query import SearchQuery
    from tests.fakes import HashEmbedder

    lib = Library(settings, embedder=HashEmbedder())
    lib.ingest([_feed(tmp_path)])
    before = [
        (h.paper.key, h.score) for h in lib.search(SearchQuery.build("reward hacking")).results
    ]
    folder = lib.encoders()[0].folder
    lib.close()
    assert (folder / STATS_FILE).is_file()

    def never(*args, **kwargs):
        raise AssertionError("the statistics were computed again")

    monkeypatch.setattr(LanguageStats, "from_batches", never)
    lib = Library(settings, embedder=HashEmbedder())
    after = [
        (h.paper.key, h.score) for h in lib.search(SearchQuery.build("reward hacking")).results
    ]
    lib.close()
    assert after == before


def test_saved_statistics_of_other_settings_or_replaced_vectors_are_not_reused(
    settings, tmp_path, monkeypatch
):
    from index.calibration import LanguageStats
    from index.dense import STATS_FILE
    from kb.library.facade import Library
    from kb.library.query import SearchQuery
    from tests.fakes import HashEmbedder

    lib = Library(settings, embedder=HashEmbedder())
    lib.ingest([_feed(tmp_path)])
    lib.search(SearchQuery.build("reward hacking"))
    side = lib.encoders()[0]
    folder = side.folder
    side.rebuild()  # the vectors were replaced (kb reindex, repair): the saved ones go
    assert not (folder / STATS_FILE).exists()
    lib.search(SearchQuery.build("reward hacking"))  # computed and saved again
    lib.close()
    assert (folder / STATS_FILE).is_file()
    computed = []
    real = LanguageStats.from_batches.__func__

    def counting(cls, *args, **kwargs):
        computed.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(LanguageStats, "from_batches", classmethod(counting))
    # a new version of the indexed-vector transform: the saved statistics do not describe it
    monkeypatch.setattr("kb.library.core.CALIBRATION", "reference-means-test")
    lib = Library(settings, embedder=HashEmbedder())
    lib.search(SearchQuery.build("reward hacking"))
    lib.close()
    assert computed, "statistics saved with other settings were reused"
