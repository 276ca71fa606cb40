"""The maintenance service: checks and repair (``kb doctor``), re-embedding (``kb reindex``)."""

from __future__ import annotations

from collections.abc import Callable

from index.dense import DenseIndex
from kb.library.core import Core
from kb.library.doctor import DoctorReport, diagnose
from kb.library.encoders import passage_text


class Maintenance:
    """Changes or checks what is already stored."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check SQLite against the indexes (see ``kb.library.doctor``); optionally repair."""
        with self.core.lock:
            return diagnose(self.core, self.repair if repair else None)

    def repair(self, problems: dict[str, list[int]]) -> None:
        """Fix what ``doctor`` found: orphans, missing vectors and keyword rows, indexes."""
        self.core.store.keywords.delete_rows(problems.get("keyword_rows_without_chunk", []))
        for paper_id in problems.get("papers_without_chunks", []):
            self.core.store.papers.remove(paper_id)
        lacking = problems.get("chunks_without_vector", [])
        if lacking:
            chunks = self.core.store.chunks.by_ids(lacking)
            papers = self.core.store.papers.by_ids(list({c.paper_id for c in chunks.values()}))
            ids = sorted(chunks)
            texts = [passage_text(papers[chunks[i].paper_id].title, chunks[i].text) for i in ids]
            main = self.core.unloaded()[0]
            self.core.store.chunks.set_vectors(ids, main.embed_passages(texts))
        sides = self.core.unloaded()
        self.core.replace_indexes(sides)
        self.core.backfill(sides)  # second-encoder vectors and keyword rows that are missing
        generation = self.core.store.generation()
        for side in sides:
            side.rebuild()
        if self.core.store.generation() == generation:
            self.core.store.mark_mirrored(generation)

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the current encoders and rebuild the indexes."""
        with self.core.lock:
            store, folder = self.core.store, self.core.settings.index_dir
            main = DenseIndex(store, self.core.embedder(), folder, None, {})
            second = self.core.second_embedder()
            sides = [main] + ([] if second is None else [
                DenseIndex(store, second, folder / second.name, second.name, {})
            ])  # fmt: skip
            total = self.core.store.papers.stats()["chunks"]
            for side in sides:
                self.core.store.set_state(side.state_key, '{"model": "(reindex in progress)"}')
            done = 0
            batch_size = max(64, self.core.settings.batch_size * 4)
            for batch in self.core.store.chunks.iter_texts(batch=batch_size):
                ids = [cid for cid, _, _ in batch]
                texts = [passage_text(title, text) for _, title, text in batch]
                for side in sides:
                    vecs = side.embed_passages(texts)
                    self.core.store.chunks.set_vectors(ids, vecs, slot=side.slot)
                done += len(batch)
                if progress:
                    progress(done, total)
            for side in sides:
                side.extra = self.core.index_extra()
                side.reset()
            self.core.forget_indexes()
            return done
