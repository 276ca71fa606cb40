"""The memory budget (``KB_MEMORY_MB``): the models and the vector indexes of a library.

The models' share is measured (the process's resident memory once they are loaded, before
any index is opened); the indexes' share is computed from their kind and size
(``index.vectors.bytes_per_vector``), so a library that would outgrow the budget is refused
before it does, with what to change.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from index.dense import DenseIndex
from index.vectors import IVF, bytes_per_vector
from kb.errors import MemoryBudgetExceeded

MIB = 2**20


def resident_mib() -> float:
    """This process's resident memory in MiB (its peak where the current one is unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS


@dataclass
class MemoryBudget:
    """The budget in MiB (0: none) and the models' measured share.

    Attributes:
        models_mib: resident memory with the models loaded and no index open (``measure``).
    """

    limit_mib: int
    models_mib: float = 0.0

    def measure_models(self) -> None:
        """Record the process's memory now: the models loaded, no index open yet."""
        self.models_mib = resident_mib()

    def check(self, sides: list[DenseIndex], chunks: int) -> None:
        """Raise ``MemoryBudgetExceeded`` if the models and indexes of ``chunks`` chunks (of
        the kind each index's plan gives that many) would not fit the budget."""
        if self.limit_mib <= 0:
            return
        kinds = [side.plan.kind_for(chunks) for side in sides]
        pairs = zip(sides, kinds, strict=True)
        per_chunk = sum(bytes_per_vector(side.identity.dim, kind) for side, kind in pairs)
        index_mib = chunks * per_chunk / MIB
        need = self.models_mib + index_mib
        if need <= self.limit_mib:
            return
        smaller = "" if set(kinds) == {IVF} else " or set KB_INDEX=ivf (1 byte a dimension, not 4)"
        raise MemoryBudgetExceeded(
            f"This library would need about {need:,.0f} MiB with {chunks:,} chunks "
            f"(models {self.models_mib:,.0f} MiB, vector indexes {index_mib:,.0f} MiB), over "
            f"KB_MEMORY_MB={self.limit_mib:,}. Raise KB_MEMORY_MB{smaller}, or split the library."
        )
