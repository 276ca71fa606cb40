"""Shared reading lists (collections with per-paper notes) and bibliography exports.

A mixin of ``kb.service.Library`` (split out to keep modules small); it uses the Library's
store and lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.service import Library as _Base
else:
    _Base = object


class Collections(_Base):
    """Methods of the Library for collections, notes and exports."""
