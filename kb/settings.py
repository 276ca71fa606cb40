"""The one ``Settings`` object: defaults < environment (``KB_*``) < command-line flags.

Build it once at the edge (``Settings.from_env()``), then pass it explicitly. Nothing in kb
reads the environment anywhere else.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kb.errors import ConfigError

DEFAULT_MODEL = "multilingual-e5-small"
# The main encoder's runtimes (``index.backends``), KB_EMBED_BACKEND's values.
EMBED_BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")


def _default_model_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("kb")) / "models"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def cpu_count() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    """Every knob of kb. Each field maps to the environment variable ``KB_<NAME>``."""

    data_dir: Path = field(
        default=Path("kb-data"), metadata=_help("Folder of the store (SQLite + FAISS index).")
    )
    model: str = field(
        default=DEFAULT_MODEL,
        metadata=_help(
            "Embedding model: 'multilingual-e5-small' (bundled, offline) or any "
            "sentence-transformers model name or local path."
        ),
    )
    model_dir: Path = field(
        default_factory=_default_model_dir,
        metadata={
            "help": "Where the converted default model is cached.",
            "shown": "(user cache)/kb/models",
        },  # fmt: skip
    )
    second_encoder: str = field(
        default="muse-v3",
        metadata=_help(
            "Second dense encoder whose calibrated scores are added to the main model's: "
            "'muse-v3' (bundled multilingual USE) or 'none'."
        ),
    )
    search_mode: str = field(
        default="hybrid",
        metadata=_help("Default search mode: dense, keyword or hybrid."),
    )
    fusion: str = field(
        default="rrf",
        metadata=_help(
            "How hybrid search picks the query language's papers for that language's places: "
            "rrf (reciprocal ranks of dense, main-encoder and BM25 rankings) or zsum (dense "
            "papers by dense score + z-scored BM25)."
        ),
    )
    paper_score: str = field(
        default="chance",
        metadata=_help(
            "How a paper's score comes from its chunks: chance (its best chunk, corrected for "
            "the paper's number of chunks, so length is not rewarded) or best (its best chunk)."
        ),
    )
    min_score: float = field(
        default=3.0,
        metadata=_help(
            "Relevance floor: dense and hybrid results scoring under it are marked weak "
            "(greyed on the web page)."
        ),
    )
    align: int = field(
        default=1,
        metadata=_help(
            "Cross-language alignment learned from paired papers (docs/ALIGNMENT.md): 1 on, "
            "0 off (centring and z-scores only)."
        ),
    )
    device: str = field(
        default="cpu",
        metadata=_help(
            "Device for embedding: cpu, or cuda (cuda:N) for a GPU, where the main encoder "
            "runs in torch, in fp16, with batches 8 times KB_BATCH_SIZE."
        ),
    )
    embed_backend: str = field(
        default="openvino",
        metadata=_help(
            "Runtime of the main encoder: openvino, torch, onnx, onnx-int8 or openvino-int8 "
            "(exported once by `kb prepare-model`; docs/PERFORMANCE.md compares them)."
        ),
    )
    batch_size: int = field(default=32, metadata=_help("Texts per embedding batch."))
    chunk_tokens: int = field(
        default=200, metadata=_help("Target chunk size in estimated model tokens.")
    )
    chunk_overlap: int = field(
        default=30, metadata=_help("Estimated tokens shared by neighbouring chunks.")
    )
    max_file_mb: int = field(default=200, metadata=_help("Largest input file accepted, in MiB."))
    workers: int = field(
        default_factory=cpu_count,
        metadata={
            "help": "Processes that parse PDFs in parallel (0: parse in the main process).",
            "shown": "number of CPU cores",
        },
    )
    parse_timeout_s: int = field(
        default=300,
        metadata=_help("Seconds one PDF may take to parse before it is skipped as failed."),
    )
    parse_memory_mb: int = field(
        default=2048, metadata=_help("Memory cap of each parsing process, in MiB.")
    )
    ray_address: str = field(
        default="",
        metadata={
            "help": "Where `kb ingest` parses and embeds: empty (here), local (a Ray started "
            "for the ingest), auto (the Ray cluster this machine joined) or host:port of a "
            "Ray head; `kb ingest --ray` alone means local unless this is set.",
            "shown": "(none: ingest here)",
        },
    )
    watch_interval_s: int = field(
        default=5, metadata=_help("Seconds between folder scans of `kb ingest --watch`.")
    )
    search_k: int = field(default=10, metadata=_help("Papers returned by a search by default."))
    snippets: int = field(default=3, metadata=_help("Snippets shown per paper in results."))
    candidates: int = field(
        default=200, metadata=_help("Chunk hits fetched from the index before grouping by paper.")
    )
    index: str = field(
        default="auto",
        metadata=_help(
            "FAISS index kind: auto (exact while the library is small, IVF with 8-bit "
            "vectors from KB_IVF_MIN_CHUNKS chunks), flat (always exact) or ivf (IVF from "
            "1,000 chunks). Candidates are always scored with the exact stored vectors."
        ),
    )
    ivf_min_chunks: int = field(
        default=100_000,
        metadata=_help("Chunks from which KB_INDEX=auto builds an IVF index."),
    )
    nprobe: int = field(
        default=0,
        metadata=_help(
            "IVF lists of the language searched per query (0: 300, measured for recall@200 "
            ">= 0.99 against exact search at 100k and 1M chunks)."
        ),
    )
    keyword_index: str = field(
        default="auto",
        metadata=_help(
            "Keyword (BM25) search: auto (SQLite FTS5 while the library is small, a tantivy "
            "index beside it from KB_KEYWORD_INDEX_MIN_CHUNKS chunks), sqlite (always FTS5) or "
            "tantivy (always the tantivy index)."
        ),
    )
    keyword_index_min_chunks: int = field(
        default=10_000,
        metadata=_help("Chunks from which KB_KEYWORD_INDEX=auto searches the tantivy index."),
    )
    memory_mb: int = field(
        default=0,
        metadata=_help(
            "Memory budget in MiB for the models and vector indexes of a library; opening or "
            "growing a library past it fails with a clear error (0: no budget)."
        ),
    )
    host: str = field(default="127.0.0.1", metadata=_help("Address `kb serve` listens on."))
    port: int = field(default=8000, metadata=_help("Port `kb serve` listens on."))
    url: str = field(
        default="",
        metadata=_help(
            "A running `kb serve` that `kb search`, `related` and `export --query` ask instead "
            "of loading the models (default: the server of this data folder, if one runs; "
            "`none`: never ask)."
        ),
    )
    api_keys: str = field(
        default="",
        metadata={
            "help": "Comma-separated API keys; every write to the HTTP API needs one as "
            "'Authorization: Bearer KEY'. Empty: the API is read-only.",
            "shown": "(none: the API is read-only)",
        },
    )
    read_only: bool = field(
        default=False,
        metadata=_help(
            "Serve the library read-only (a read replica): the API refuses every write with "
            "403 and the CLI's write commands refuse too (1/true to turn on)."
        ),
    )
    read_access: str = field(
        default="open",
        metadata=_help("Who may read through the HTTP API: open (anyone) or key (an API key)."),
    )
    cors_origins: str = field(
        default="",
        metadata={
            "help": "Comma-separated origins allowed by CORS (e.g. https://lab.example.org), "
            "or * for any. Empty: CORS is off.",
            "shown": "(none: CORS off)",
        },
    )
    import_roots: str = field(
        default="",
        metadata={
            "help": "Server folders an ingest job may read from, separated by the OS path "
            "separator (':' on Linux). Empty: no server-side folder import.",
            "shown": "(none)",
        },
    )
    upload_max_mb: int = field(
        default=100, metadata=_help("Largest PDF accepted by an upload to the HTTP API, in MiB.")
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``KB_*`` variables of ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f"KB_{f.name.upper()}"
            if key in env:
                values[f.name] = _parse(key, env[key], _field_type(f))
        return cls(**values).validated()

    def replace(self, **overrides: Any) -> Settings:
        """A copy with the given fields changed; ``None`` values are ignored (unset flags)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        known = {f.name: f for f in fields(self)}
        for name, value in clean.items():
            if name not in known:
                raise ConfigError(f"Unknown setting {name!r}.")
            if isinstance(value, str) and _field_type(known[name]) is not str:
                clean[name] = _parse(name, value, _field_type(known[name]))
        return dataclasses.replace(self, **clean).validated()

    def validated(self) -> Settings:
        """Check value ranges; raise ConfigError naming the setting."""
        positive = (
            "batch_size", "chunk_tokens", "max_file_mb", "search_k", "candidates",
            "parse_timeout_s", "parse_memory_mb", "watch_interval_s", "upload_max_mb",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"KB_{name.upper()} must be at least 1, not {getattr(self, name)}."
                )
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError(
                f"KB_CHUNK_OVERLAP must be between 0 and KB_CHUNK_TOKENS - 1 "
                f"({self.chunk_tokens - 1}), not {self.chunk_overlap}."
            )
        if self.workers < 0:
            raise ConfigError(f"KB_WORKERS must be 0 or more, not {self.workers}.")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"KB_DEVICE must be cpu, cuda or cuda:N, not {self.device!r}.")
        for name in ("ivf_min_chunks", "keyword_index_min_chunks", "nprobe", "memory_mb"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"KB_{name.upper()} must be 0 or more, not {getattr(self, name)}."
                )
        if self.embed_backend not in EMBED_BACKENDS:
            raise ConfigError(
                f"KB_EMBED_BACKEND must be one of {', '.join(EMBED_BACKENDS)}, "
                f"not {self.embed_backend!r}."
            )
        if self.index not in ("auto", "flat", "ivf"):
            raise ConfigError(f"KB_INDEX must be auto, flat or ivf, not {self.index!r}.")
        if self.keyword_index not in ("auto", "sqlite", "tantivy"):
            raise ConfigError(
                f"KB_KEYWORD_INDEX must be auto, sqlite or tantivy, not {self.keyword_index!r}."
            )
        if self.snippets < 0:
            raise ConfigError(f"KB_SNIPPETS must be 0 or more, not {self.snippets}.")
        if not 0 < self.port < 65536:
            raise ConfigError(f"KB_PORT must be a TCP port (1-65535), not {self.port}.")
        if self.second_encoder not in ("muse-v3", "none"):
            raise ConfigError(
                f"KB_SECOND_ENCODER must be 'muse-v3' or 'none', not {self.second_encoder!r}."
            )
        if self.search_mode not in ("dense", "keyword", "hybrid"):
            raise ConfigError(
                f"KB_SEARCH_MODE must be dense, keyword or hybrid, not {self.search_mode!r}."
            )
        if self.fusion not in ("rrf", "zsum"):
            raise ConfigError(f"KB_FUSION must be rrf or zsum, not {self.fusion!r}.")
        if self.paper_score not in ("chance", "best"):
            raise ConfigError(f"KB_PAPER_SCORE must be chance or best, not {self.paper_score!r}.")
        if self.align not in (0, 1):
            raise ConfigError(f"KB_ALIGN must be 0 or 1, not {self.align}.")
        if not math.isfinite(self.min_score):
            raise ConfigError(f"KB_MIN_SCORE must be a finite number, not {self.min_score}.")
        if self.read_access not in ("open", "key"):
            raise ConfigError(f"KB_READ_ACCESS must be open or key, not {self.read_access!r}.")
        if self.read_access == "key" and not self.keys:
            raise ConfigError("KB_READ_ACCESS=key needs at least one key in KB_API_KEYS.")
        if any(len(k) < 16 for k in self.keys):
            raise ConfigError("Every key in KB_API_KEYS must be at least 16 characters long.")
        if self.ray_address and not is_ray_address(self.ray_address):
            raise ConfigError(
                f"KB_RAY_ADDRESS has value {self.ray_address!r}. Give local, auto, host:port or "
                "ray://host:port (empty: ingest without Ray)."
            )
        if not self.model.strip():
            raise ConfigError("KB_MODEL is empty; name a model or leave it unset for the default.")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        """The API keys of KB_API_KEYS."""
        return _split(self.api_keys, ",")

    @property
    def writable(self) -> bool:
        """Whether the HTTP API takes writes: API keys are set and KB_READ_ONLY is off."""
        return bool(self.keys) and not self.read_only

    @property
    def cors_list(self) -> tuple[str, ...]:
        """The origins of KB_CORS_ORIGINS."""
        return _split(self.cors_origins, ",")

    @property
    def import_root_paths(self) -> tuple[Path, ...]:
        """The folders of KB_IMPORT_ROOTS, resolved."""
        return tuple(Path(p).expanduser().resolve() for p in _split(self.import_roots, os.pathsep))

    # Paths of the store, derived from data_dir.
    @property
    def db_path(self) -> Path:
        return self.data_dir / "kb.sqlite3"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def files_dir(self) -> Path:
        """Where PDFs uploaded through the API (or imported from a bundle) are kept."""
        return self.data_dir / "files"


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
_RAY_ADDRESS = re.compile(r"local|auto|(ray://)?[\w.\-\[\]:]+:\d{1,5}")


def is_ray_address(value: str) -> bool:
    """Whether ``value`` is a Ray address KB_RAY_ADDRESS and ``--ray`` take: local, auto,
    host:port or ray://host:port."""
    return _RAY_ADDRESS.fullmatch(value) is not None


def _split(raw: str, sep: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(sep) if part.strip())


def _field_type(f: dataclasses.Field[Any]) -> type:
    return {"Path": Path, "str": str, "int": int, "float": float, "bool": bool}[str(f.type)]


def _parse(key: str, raw: str, typ: type) -> Any:
    if typ is int:
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigError(f"{key} has value {raw!r}. Not a valid int.") from None
    if typ is bool:
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{key} has value {raw!r}. Not a valid boolean (1/0, true/false).")
    if typ is float:
        try:
            return float(raw.strip())
        except ValueError:
            raise ConfigError(f"{key} has value {raw!r}. Not a valid number.") from None
    if typ is Path:
        if not raw.strip():
            raise ConfigError(f"{key} is empty. Give a folder path.")
        return Path(raw).expanduser()
    return raw


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, help) for every setting, for docs and ``kb config``."""
    rows = []
    for f in fields(Settings):
        default = f.metadata.get("shown", f.default)
        rows.append((f"KB_{f.name.upper()}", str(default), f.metadata["help"]))
    return rows
