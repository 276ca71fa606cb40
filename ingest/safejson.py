"""JSON from outside, parsed within limits: size, nesting depth and number of containers.

``json.loads`` recurses once per nesting level: Python's C decoder stops at the interpreter's
recursion limit with a ``RecursionError`` (not a ``ValueError``, so code that catches only
``ValueError`` crashes on one line of ``[[[[...``), and a document of many small lists or
objects parses into about 30 times its size in Python objects. ``scan`` measures both on the
raw bytes, strings skipped, in fixed-size blocks with numpy (a few MiB whatever the input, a
few milliseconds per MiB), so a hostile document is refused before ``json.loads`` sees it.
Used by the JSONL records (``ingest.records``), the bundle records (``kb.bundle``) and the
API's request guard (``api.guard``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from kb.errors import InvalidInput

MAX_DEPTH = 32  # kb's records and request bodies nest 3 levels; 32 is generous
_BLOCK = 1 << 18  # bytes scanned at once: about 16 bytes of numpy arrays per byte
_QUOTE, _OPEN, _OPEN_OBJ, _CLOSE, _CLOSE_OBJ = (ord(c) for c in '"[{]}')


def scan(data: bytes) -> tuple[int, int]:
    """(deepest nesting, number of arrays and objects) of the JSON text ``data``.

    Brackets inside strings do not count; ``data`` need not be valid JSON (then the numbers
    describe its brackets).
    """
    if data.count(b"[") + data.count(b"{") == 0:
        return 0, 0
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes gone: '"' delimits
    depth = deepest = containers = 0
    inside = False  # within a string at the start of the block
    for start in range(0, len(plain), _BLOCK):
        block = np.frombuffer(plain, np.uint8, min(_BLOCK, len(plain) - start), start)
        quoted = np.cumsum(block == _QUOTE, dtype=np.int32) & 1
        outside = quoted == (1 if inside else 0)
        opens = ((block == _OPEN) | (block == _OPEN_OBJ)) & outside
        closes = ((block == _CLOSE) | (block == _CLOSE_OBJ)) & outside
        levels = np.cumsum(opens.astype(np.int32) - closes, dtype=np.int64) + depth
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
        containers += int(opens.sum())
        inside = bool(quoted[-1]) != inside
    return deepest, containers


def depth_problem(
    data: bytes, max_depth: int = MAX_DEPTH, max_containers: int | None = None
) -> str | None:
    """Why the JSON text ``data`` is refused before parsing, as a predicate ("nests 40 levels
    deep, at most 32 are allowed"), or None."""
    if data.count(b"[") + data.count(b"{") <= max_depth:  # the common case: nothing to scan
        return None
    depth, containers = scan(data)
    if depth > max_depth:
        return f"nests {depth} levels deep, at most {max_depth} are allowed"
    if max_containers is not None and containers > max_containers:
        return f"holds {containers} arrays and objects, at most {max_containers} are allowed"
    return None


def loads_limited(
    data: bytes,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    max_containers: int | None = None,
) -> Any:
    """``json.loads(data)`` once ``data`` is at most ``max_bytes`` long, nests at most
    ``max_depth`` levels and holds at most ``max_containers`` arrays and objects.

    Raises:
        InvalidInput: too long, too deep, too many containers, not UTF-8 or not JSON; the
            message says which, as a predicate for the caller to put after its subject
            ("not valid JSON (...)").
    """
    if len(data) > max_bytes:
        raise InvalidInput(f"{len(data)} bytes long, over the limit of {max_bytes}.")
    problem = depth_problem(data, max_depth, max_containers)
    if problem is not None:
        raise InvalidInput(f"{problem}.")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise InvalidInput(f"not UTF-8 text ({e.reason} at byte {e.start}).") from e
    except json.JSONDecodeError as e:
        raise InvalidInput(f"not valid JSON ({e.msg} at column {e.colno}).") from e
    except RecursionError as e:  # cannot happen below max_depth; kept as a last line
        raise InvalidInput(f"nested deeper than {max_depth} levels.") from e
