"""The cross-language alignment (index.alignment) and how the dense index applies it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import index.alignment as alignment_module
from index.alignment import Alignment, fit_procrustes, fit_projection, load_alignment
from kb.library.facade import Library
from kb.library.query import SearchQuery
from tests.fakes import HashEmbedder

DIM = 64  # the HashEmbedder's


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _rotation(dim: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q.astype(np.float32)


def test_procrustes_is_orthogonal_and_recovers_a_planted_rotation():
    rng = np.random.default_rng(0)
    en = rng.normal(size=(400, 32))
    rotation = _rotation(32, 1)
    zh = en @ rotation.T + 0.01 * rng.normal(size=en.shape)  # zh = en turned, plus noise
    w = fit_procrustes(zh, en)
    assert np.allclose(w.T @ w, np.eye(32), atol=1e-5)
    assert np.allclose(w, rotation, atol=0.01)  # zh @ W lands on en
    assert np.abs(zh @ w - en).mean() < 0.02 < np.abs(zh - en).mean()


def test_projection_removes_the_directions_the_languages_differ_in():
    rng = np.random.default_rng(0)
    en = rng.normal(size=(300, 48))
    planted = _rotation(48, 2)[:3]  # the languages differ along these 3 directions only
    zh = en + rng.normal(size=(300, 3)) @ planted
    directions = fit_projection(zh, en, k=3)
    assert np.allclose(directions @ directions.T, np.eye(3), atol=1e-5)
    # the fitted directions span the planted ones
    assert np.allclose(np.linalg.norm(planted @ directions.T, axis=1), 1.0, atol=1e-4)
    projection = Alignment("project-out", directions, "fp")
    langs = ["zh"] * 300
    out = projection.apply(_unit(zh), langs)
    assert np.allclose(out @ directions.T, 0.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(projection.apply(out, langs), out, atol=1e-5)  # a projection: idempotent
    # both languages are projected, so twins meet
    aligned_en = projection.apply(_unit(en), ["en"] * 300)
    assert np.allclose(aligned_en @ directions.T, 0.0, atol=1e-5)


def test_procrustes_moves_chinese_rows_only():
    rng = np.random.default_rng(3)
    w = _rotation(DIM, 4)
    procrustes = Alignment("procrustes", w, "fp")
    vecs = _unit(rng.normal(size=(4, DIM)))
    out = procrustes.apply(vecs, ["en", "zh", "unknown", "zh"])
    assert np.array_equal(out[[0, 2]], vecs[[0, 2]])
    assert np.allclose(out[[1, 3]], vecs[[1, 3]] @ w, atol=1e-5)  # orthogonal: norm kept
    assert np.allclose(procrustes.apply(vecs[:1], ["en"]), vecs[:1])


def test_the_file_round_trips_and_is_found_by_the_model_fingerprint(tmp_path: Path):
    first = Alignment("procrustes", _rotation(DIM, 5), "weights-a")
    first.save(tmp_path / "a.npz")
    Alignment("project-out", _rotation(DIM, 6)[:8], "weights-b").save(tmp_path / "b.npz")
    found = load_alignment("weights-a", tmp_path, dim=DIM)
    assert found is not None and found.kind == "procrustes"
    assert found.fingerprint == first.fingerprint
    assert np.array_equal(found.matrix, first.matrix)
    assert load_alignment("weights-c", tmp_path) is None  # another model: no alignment
    assert Alignment("procrustes", _rotation(DIM, 7), "weights-a").fingerprint != (
        first.fingerprint
    )
    with pytest.raises(ValueError, match="64-d"):
        load_alignment("weights-a", tmp_path, dim=32)
    (tmp_path / "0.npz").write_bytes(b"not a zip")  # read first
    with pytest.raises(ValueError, match="not a kb alignment file"):
        load_alignment("weights-a", tmp_path)


def test_the_shipped_alignments_fit_their_encoders():
    files = sorted(alignment_module.ALIGNMENT_DIR.glob("*.npz"))
    assert {p.stem for p in files} == {"multilingual-e5-small", "muse-v3"}
    for path in files:
        fitted = Alignment.read(path)
        m = fitted.matrix.astype(np.float64)
        if fitted.kind == "procrustes":
            assert m.shape == (384, 384)
            assert np.allclose(m.T @ m, np.eye(384), atol=1e-4)
        else:
            assert m.shape == (8, 512)
            assert np.allclose(m @ m.T, np.eye(8), atol=1e-4)


# ------------------------------------------------------------------ in the library's index


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Alignment:
    """A Procrustes alignment shipped for the fake embedder's weights."""
    folder = tmp_path / "alignment_data"
    fitted = Alignment("procrustes", _rotation(DIM, 8), HashEmbedder().fingerprint)
    fitted.save(folder / "hash-test.npz")
    monkeypatch.setattr(alignment_module, "ALIGNMENT_DIR", folder)
    return fitted


def _open(settings, align: int = 1) -> Library:
    library = Library(settings.replace(align=align), embedder=HashEmbedder())
    library.encoders()
    return library


def _ingest(library: Library, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    rows = [
        {"key": "en1", "title": "Reward hacking in agents", "abstract": "Agents game rewards."},
        {"key": "zh1", "title": "奖励黑客攻击", "abstract": "智能体利用奖励函数的漏洞。"},
    ]
    feed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    library.ingest([feed])


def _indexed(library: Library) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """(raw stored vectors, indexed vectors, languages, ids) of the main encoder."""
    side = library.encoders()[0]
    ids, raw, langs = next(library.store.chunks.iter_vectors(DIM))
    return raw, side.vectors.vectors_of(ids), langs, ids


def _config(library: Library) -> dict:
    return json.loads((library.settings.index_dir / "config.json").read_text("utf-8"))


def test_chinese_passages_and_queries_are_aligned_english_ones_not(settings, tmp_path, shipped):
    library = _open(settings)
    _ingest(library, tmp_path)
    raw, indexed, langs, _ = _indexed(library)
    side = library.encoders()[0]
    assert side.alignment is not None and side.alignment.fingerprint == shipped.fingerprint
    centred = side.means().center(raw, langs, "passage")
    zh = np.asarray(langs) == "zh"
    assert zh.any() and (~zh).any()
    assert np.allclose(indexed[~zh], centred[~zh], atol=1e-5)
    assert np.allclose(indexed[zh], centred[zh] @ shipped.matrix, atol=1e-5)
    raw_query = side.embedder.encode(["奖励黑客"], kind="query")
    expected = side.means().center(raw_query, ["zh"], "query")[0] @ shipped.matrix
    assert np.allclose(side.embed_query("奖励黑客", "zh"), expected, atol=1e-5)
    en_query = side.means().center(side.embedder.encode(["reward"], kind="query"), ["en"], "query")
    assert np.allclose(side.embed_query("reward", "en"), en_query[0], atol=1e-5)
    assert library.search(SearchQuery.build("奖励黑客", mode="dense")).results
    library.close()


def test_align_off_gives_the_old_vectors_and_a_changed_transform_rebuilds(
    settings, tmp_path, shipped, monkeypatch
):
    library = _open(settings)
    _ingest(library, tmp_path)
    aligned = _indexed(library)[1]
    assert _config(library)["alignment"] == shipped.fingerprint
    library.close()

    library = _open(settings, align=0)  # KB_ALIGN=0: the index is rebuilt without it
    raw, indexed, langs, _ = _indexed(library)
    side = library.encoders()[0]
    assert side.alignment is None and _config(library)["alignment"] == "off"
    assert np.allclose(indexed, side.means().center(raw, langs, "passage"), atol=1e-6)
    assert not np.allclose(indexed, aligned, atol=1e-3)
    library.close()

    changed = Alignment("procrustes", _rotation(DIM, 9), shipped.model_fingerprint)
    changed.save(alignment_module.ALIGNMENT_DIR / "hash-test.npz")  # a new fit ships
    library = _open(settings)
    raw, indexed, langs, _ = _indexed(library)
    assert _config(library)["alignment"] == changed.fingerprint != shipped.fingerprint
    zh = np.asarray(langs) == "zh"
    centred = library.encoders()[0].means().center(raw, langs, "passage")
    assert np.allclose(indexed[zh], centred[zh] @ changed.matrix, atol=1e-5)
    library.close()


def test_align_must_be_0_or_1():
    from kb.errors import ConfigError
    from kb.settings import Settings

    assert Settings.from_env({"KB_ALIGN": "0"}).align == 0
    with pytest.raises(ConfigError, match="KB_ALIGN"):
        Settings.from_env({"KB_ALIGN": "2"})
