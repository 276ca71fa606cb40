"""Embedding runtimes other than torch: ONNX Runtime and OpenVINO, fp32 or with int8 weights.

``KB_EMBED_BACKEND`` picks one. ``torch`` runs the sentence-transformers model as loaded;
the others run the same transformer, exported once from it and cached under the model
folder (``prepare``, which ``kb prepare-model`` calls), with the model's own tokenizer,
prompts, pooling and normalisation done here. sentence-transformers' own ``backend=``
support needs optimum, whose releases do not install beside transformers 5, so kb exports
with torch's ONNX exporter and OpenVINO's converter directly.

- ``onnx``: ``torch.onnx.export`` of the transformer, run by ONNX Runtime.
- ``onnx-int8``: the same graph with dynamically quantised int8 weights and activations
  (``onnxruntime.quantization.quantize_dynamic``).
- ``openvino``: ``openvino.convert_model`` of the transformer, run by OpenVINO.
- ``openvino-int8``: the same with int8 weights (``nncf.compress_weights``); activations
  stay fp32.

Texts are tokenised once, sorted by token count and batched, so a batch is padded only to
its own longest text. An export folder holds all that embedding needs (the transformer, the
tokenizer as ``tokenizer.json``, prompts, pooling, the weights' fingerprint, and the model
files it was exported from in ``kb_backend.json``), so loading it imports neither torch nor
transformers: ``find`` picks it by the model folder's files, ``open_export`` loads it.

docs/PERFORMANCE.md ("Embedding backends") has the speeds and the standard evaluation of
each, which decide the default and which backends' vectors may share a library
(``NUMERICS``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import ModelError
from kb.settings import EMBED_BACKENDS as BACKENDS
from kb.store.files import atomic_dir, write_json

# Vectors of backends with the same value here may share one library: on the standard
# evaluation they give the same rankings (docs/PERFORMANCE.md). Others ask for `kb reindex`.
NUMERICS = {
    "torch": "float",
    "onnx": "float",
    "openvino": "float",
    "onnx-int8": "onnx-int8",
    "openvino-int8": "openvino-int8",
}
_INSTALL = {
    "onnx": "pip install onnx onnxruntime (or pip install -e '.[onnx]')",
    "openvino": "pip install openvino",
    "nncf": "pip install nncf (or pip install -e '.[int8]')",
}
_FORMAT = 2  # bump when the exported files change shape (2: tokenizer and text settings kept)
_OPSET = 17

log = logging.getLogger(__name__)

Run = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TextModel:
    """What embedding needs besides the transformer: tokenizer, prompts, pooling, length."""

    tokenizer: Any  # a `tokenizers.Tokenizer` (a fast tokenizer's own engine)
    query_prompt: str  # prepended to queries ("query: " for e5)
    document_prompt: str  # prepended to passages ("passage: " for e5)
    pooling: str  # "mean" or "cls"
    max_length: int
    normalize: bool
    pad_id: int

    def settings(self) -> dict[str, Any]:
        """Everything but the tokenizer, as saved in ``kb_backend.json``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tokenizer"}


@dataclass(frozen=True)
class Export:
    """An export folder, loaded: what an embedder needs, with no torch."""

    folder: Path
    backend: str
    fingerprint: str  # of the torch weights it was exported from
    dim: int
    text: TextModel
    run: Run


def family(backend: str) -> str:
    """The runtime package a backend needs: "torch", "onnx" or "openvino"."""
    return backend.split("-")[0]


def folder(model_dir: Path, fingerprint: str, backend: str) -> Path:
    """Where ``backend``'s exported files for the weights ``fingerprint`` are kept."""
    return model_dir / "backends" / f"{fingerprint}-{backend}-v{_FORMAT}"


def text_model(st: Any) -> TextModel:
    """The tokenizer, prompts, pooling and length of a loaded SentenceTransformer.

    Raises ModelError for a model these runtimes cannot reproduce (pooling other than mean
    or CLS, extra modules such as a dense projection).
    """
    modules = [type(module).__name__ for module in st]
    if modules[:1] != ["Transformer"] or not set(modules[1:]) <= {"Pooling", "Normalize"}:
        raise ModelError(
            f"The {'/'.join(modules)} model is not a transformer with pooling; only "
            "KB_EMBED_BACKEND=torch runs it."
        )
    config: dict[str, Any] = {"pooling_mode": "mean", "include_prompt": True}
    if "Pooling" in modules:
        config.update(st[modules.index("Pooling")].get_config_dict())
    pooling = str(config["pooling_mode"])
    if pooling not in {"mean", "cls"} or not config["include_prompt"]:
        raise ModelError(
            f"{pooling!r} pooling (include_prompt={config['include_prompt']}) is not supported "
            "here; use KB_EMBED_BACKEND=torch."
        )
    engine = getattr(st.tokenizer, "backend_tokenizer", None)
    if engine is None:
        raise ModelError(
            f"The model's tokenizer ({type(st.tokenizer).__name__}) has no fast (tokenizers) "
            "version; only KB_EMBED_BACKEND=torch runs it."
        )
    from tokenizers import Tokenizer

    max_length = int(st.max_seq_length or 512)
    # sentence-transformers' own choice of prompts for encode_query / encode_document.
    prompts: dict[str, str] = dict(st.prompts or {})
    document = next((prompts[n] for n in ("document", "passage", "corpus") if n in prompts), "")
    return TextModel(
        tokenizer=_configured(Tokenizer.from_str(engine.to_str()), max_length),
        query_prompt=prompts.get("query", ""),
        document_prompt=document,
        pooling=pooling,
        max_length=max_length,
        normalize="Normalize" in modules,
        pad_id=int(st.tokenizer.pad_token_id or 0),
    )


def _configured(tokenizer: Any, max_length: int) -> Any:
    """``tokenizer`` (a `tokenizers.Tokenizer`) truncating to ``max_length`` tokens, special
    tokens counted, as transformers does, and not padding (batches are padded here)."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def source_key(path: Path) -> str | None:
    """A key of a local model folder's files (names, sizes, modification times), or None
    for a model that is not a local folder. An export made from that folder records it, so
    a later load finds the export without loading the model (``find``)."""
    if not path.is_dir():
        return None
    h = hashlib.sha256(str(path.resolve()).encode())
    for file in sorted(f for f in path.rglob("*") if f.is_file() and "backends" not in f.parts):
        stat = file.stat()
        h.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def find(model_dir: Path, backend: str, source: str) -> Path | None:
    """The export folder for ``backend`` made from the model files ``source``, if any."""
    for meta in sorted((model_dir / "backends").glob(f"*-{backend}-v{_FORMAT}/kb_backend.json")):
        try:
            if source in json.loads(meta.read_text(encoding="utf-8")).get("sources", []):
                return meta.parent
        except (OSError, ValueError):  # a damaged record: that folder is not reused
            continue
    return None


def prepare(
    st: Any, model_dir: Path, backend: str, *, fingerprint: str, source: str | None
) -> Path:
    """Export the transformer of ``st`` for ``backend`` under ``model_dir``, once; returns
    the folder (``folder``), which records ``source`` (the model files, ``source_key``).

    An export already there is kept. Raises ModelError when the runtime is not installed,
    the model cannot be run here, or the export fails.
    """
    text = text_model(st)  # refuses a model it cannot run, before exporting
    dest = folder(model_dir, fingerprint, backend)
    meta = dest / "kb_backend.json"
    if meta.is_file():
        _remember(meta, source)
        return dest
    _runtime_module(backend)  # fail early, with the install line
    log.warning("Exporting the embedding model for %s (once) to %s", backend, dest)
    record = {
        "backend": backend,
        "format": _FORMAT,
        "fingerprint": fingerprint,
        "dim": int(st.get_embedding_dimension()),
        "text": text.settings(),
        "sources": [source] if source else [],
    }
    try:
        with atomic_dir(dest) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export(st, tmp, backend)
            text.tokenizer.save(str(tmp / "tokenizer.json"))
            write_json(tmp / "kb_backend.json", record)
    except ModelError:
        raise
    except OSError as e:
        raise ModelError(
            f"Cannot write the {backend} export to {dest}: {e.strerror or e}. "
            "Set KB_MODEL_DIR to a writable folder."
        ) from e
    except Exception as e:  # exporters fail in many ways
        raise ModelError(
            f"Cannot export the model for KB_EMBED_BACKEND={backend} "
            f"({type(e).__name__}: {e}); KB_EMBED_BACKEND=torch runs it as it is."
        ) from e
    _drop_older_formats(dest)
    return dest


def _drop_older_formats(dest: Path) -> None:
    """Remove the exports of the same weights and backend in an older format (replaced)."""
    stem = dest.name.rsplit("-v", 1)[0]
    for old in dest.parent.glob(f"{stem}-v*"):
        if old != dest and old.name[len(stem) + 2 :].isdigit():
            shutil.rmtree(old, ignore_errors=True)


def _remember(meta: Path, source: str | None) -> None:
    """Add ``source`` to an export's record (the same weights reached from other files)."""
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
        if source and source not in record.get("sources", []):
            record["sources"] = [*record.get("sources", []), source]
            write_json(meta, record)
    except (OSError, ValueError) as e:  # read-only model folder: found by loading, as before
        log.warning("Cannot record the model files in %s: %s", meta, e)


def open_export(dest: Path, threads: int) -> Export:
    """The export in ``dest``, loaded: tokenizer, settings and the compiled transformer."""
    try:
        record = json.loads((dest / "kb_backend.json").read_text(encoding="utf-8"))
        backend = str(record["backend"])
        runtime = _runtime_module(backend)
        from tokenizers import Tokenizer

        settings = record["text"]
        tokenizer = Tokenizer.from_file(str(dest / "tokenizer.json"))
        text = TextModel(tokenizer=_configured(tokenizer, settings["max_length"]), **settings)
        if family(backend) == "onnx":
            run = _onnx_run(runtime, dest / _onnx_name(backend), threads)
        else:
            run = _openvino_run(runtime, dest / "model.xml", threads)
        return Export(dest, backend, str(record["fingerprint"]), int(record["dim"]), text, run)
    except ModelError:
        raise
    except Exception as e:  # a damaged or partial export
        raise ModelError(
            f"Cannot load the embedding export in {dest} ({type(e).__name__}: {e}). "
            "Delete that folder and run `kb prepare-model` to export it again."
        ) from e


def encode(
    run: Run, model: TextModel, texts: list[str], *, prompt: str, batch_size: int
) -> np.ndarray:
    """Embed ``texts`` with ``prompt`` prepended: [len(texts), dim] float32.

    Texts are tokenised once and batched by token count, so padding stays within a batch of
    texts of about the same length; rows come back in the order of ``texts``.
    """
    encoded = model.tokenizer.encode_batch([prompt + t for t in texts], add_special_tokens=True)
    ids = [e.ids for e in encoded]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(ids[i]) for i in rows)
        batch = np.zeros((len(rows), width), dtype=np.int64)  # pad id: the tokenizer's
        batch[:] = model.pad_id
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            batch[r, : len(ids[i])] = ids[i]
            mask[r, : len(ids[i])] = 1
        vectors = _pool(run(batch, mask), mask, model.pooling)
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
    assert out is not None
    if model.normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return np.asarray(hidden[:, 0], dtype=np.float32)
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    return np.asarray(summed / np.maximum(weights.sum(axis=1), 1e-9), dtype=np.float32)


def check_installed(backend: str) -> None:
    """Raise ModelError, saying what to install, when ``backend``'s runtime is missing."""
    _runtime_module(backend)


def _runtime_module(backend: str) -> Any:
    """The runtime package ``backend`` needs, imported; ModelError saying how to install it
    (and, for openvino-int8, nncf, which compresses the weights)."""
    if backend not in BACKENDS or backend == "torch":
        raise ModelError(f"Unknown embedding backend {backend!r}; one of {', '.join(BACKENDS)}.")
    needed = [family(backend)] + (["nncf"] if backend == "openvino-int8" else [])
    modules = []
    for name in needed:
        try:
            modules.append(importlib.import_module("onnxruntime" if name == "onnx" else name))
        except ImportError:
            raise ModelError(
                f"KB_EMBED_BACKEND={backend} needs {name}, which is not installed: "
                f"{_INSTALL[name]}. Or set KB_EMBED_BACKEND=torch."
            ) from None
    return modules[0]


def _onnx_name(backend: str) -> str:
    return "model_int8.onnx" if backend.endswith("-int8") else "model.onnx"


def _hidden_states(transformer: Any) -> Any:
    """The transformer of a SentenceTransformer as a module (input_ids, mask) -> states."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return HiddenStates(transformer).eval()


def _export(st: Any, tmp: Path, backend: str) -> None:
    import torch

    module = _hidden_states(st[0].auto_model)
    sample = st.tokenizer(["kb", "a longer sample text"], padding=True, return_tensors="pt")
    inputs = (sample["input_ids"], sample["attention_mask"])
    with torch.no_grad():
        if family(backend) == "onnx":
            axes = {0: "batch", 1: "tokens"}
            torch.onnx.export(
                module,
                inputs,
                str(tmp / "model.onnx"),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=_OPSET,
                dynamo=False,
            )
            if backend == "onnx-int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(
                    str(tmp / "model.onnx"),
                    str(tmp / "model_int8.onnx"),
                    weight_type=QuantType.QInt8,
                )
                (tmp / "model.onnx").unlink()
            return
        import openvino

        converted = openvino.convert_model(module, example_input=inputs)
        if backend == "openvino-int8":
            import nncf

            converted = nncf.compress_weights(converted)
        openvino.save_model(converted, str(tmp / "model.xml"))


def _onnx_run(ort: Any, path: Path, threads: int) -> Run:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])

    return run


def _openvino_run(ov: Any, path: Path, threads: int) -> Run:
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    compiled = core.compile_model(str(path), "CPU", config)
    output = compiled.outputs[0]

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # A request per call: searches embed their queries from several threads at once.
        return np.asarray(compiled.create_infer_request().infer({0: ids, 1: mask})[output])

    return run
