"""The model is shared by searches and an ingest's passages, taken in turn (index.dense)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np

from index.dense import FairLock


class SlowEmbedder:
    """Wraps the fake embedder: each call takes a while, and two at once is an error."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint
        self.numerics = inner.numerics
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


def _never_computed(monkeypatch) -> list[int]:
    """Count the computations of the statistics' sums from every stored vector."""
    from index.dense import DenseIndex

    computed: list[int] = []
    real = DenseIndex._computed_moments

    def counting(self):
        computed.append(1)
        return real(self)

    monkeypatch.setattr(DenseIndex, "_computed_moments", counting)
    return computed


def test_a_start_reuses_the_saved_score_statistics(settings, tmp_path, monkeypatch):
    """Computing the per-language statistics reads every vector; a new process reuses the
    sums saved with the index (same model, alignment and settings) and ranks the same."""
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
    computed = _never_computed(monkeypatch)
    lib = Library(settings, embedder=HashEmbedder())
    after = [
        (h.paper.key, h.score) for h in lib.search(SearchQuery.build("reward hacking")).results
    ]
    lib.close()
    assert after == before and not computed


def test_saved_statistics_of_other_settings_or_replaced_vectors_are_not_reused(
    settings, tmp_path, monkeypatch
):
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
    computed = _never_computed(monkeypatch)
    # a new version of the indexed-vector transform: the saved sums do not describe it
    monkeypatch.setattr("kb.library.core.CALIBRATION", "reference-means-test")
    lib = Library(settings, embedder=HashEmbedder())
    lib.search(SearchQuery.build("reward hacking"))
    lib.close()
    assert computed, "statistics saved with other settings were reused"


def test_statistics_follow_every_added_chunk_without_reading_the_library(
    settings, tmp_path, monkeypatch
):
    """The running sums after ingests equal sums computed afresh from the store, and a
    growing library is never read whole again."""
    from index.calibration import Moments
    from kb.library.facade import Library
    from tests.fakes import HashEmbedder

    lib = Library(settings, embedder=HashEmbedder())
    lib.ingest([_feed(tmp_path)])
    side = lib.encoders()[0]
    side.stats()
    computed = _never_computed(monkeypatch)
    more = tmp_path / "more.jsonl"
    rows = [{"key": f"m{i}", "title": f"关机回避 {i}", "abstract": "权力寻求。"} for i in range(5)]
    rows.append(
        {"key": "fr", "title": "Alignement des valeurs", "abstract": "Un agent.", "lang": "fr"}
    )
    more.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    lib.ingest([more])
    running = side.stats()
    assert not computed and running.counts["fr"] == 1  # a new language counted in too
    fresh = Moments.empty(side.identity.dim)
    for _, vecs, langs in lib.store.chunks.iter_vectors(side.identity.dim):
        fresh.add(side.to_index(vecs, langs), langs)
    assert fresh.counts == side.moments().counts
    for lang in fresh.counts:
        assert np.allclose(fresh.sums[lang], side.moments().sums[lang], atol=1e-6)
        assert np.allclose(fresh.outer[lang], side.moments().outer[lang], atol=1e-6)
    lib.close()


def test_passages_are_embedded_shortest_first_and_returned_in_order(library):
    side = library.encoders()[0]
    seen: list[list[str]] = []
    inner = side.embedder

    class Recording:
        name, dim, fingerprint, batch_size = inner.name, inner.dim, inner.fingerprint, 32

        def encode(self, texts, *, kind, progress=False):
            seen.append(list(texts))
            return inner.encode(texts, kind=kind)

    side.embedder = Recording()
    texts = ["x" * n + f" passage {n}" for n in (50, 3, 400, 12, 7, 90, 1, 250, 30, 5)]
    vecs = side.embed_passages(texts)
    assert [len(t) for call in seen for t in call] == sorted(len(t) for t in texts)
    for text, vec in zip(texts, vecs, strict=True):  # each row is its own text's vector
        assert np.allclose(vec, inner.encode([text], kind="passage")[0])


def test_an_index_holds_what_a_rebuild_from_the_store_would(library, tmp_path):
    """Vectors are stored in float16; what ingest adds to an index is computed from the
    stored values, so the index a search uses is the one a rebuild would make."""
    library.ingest([_feed(tmp_path, n=4)])
    for side in library.encoders():
        dim = side.identity.dim
        ids, raw, langs = next(library.store.chunks.iter_vectors(dim, slot=side.slot))
        added = side.vectors.vectors_of(ids)
        assert np.array_equal(added, side.to_index(raw, langs))
        side.rebuild()
        assert np.array_equal(side.vectors.vectors_of(ids), added)
