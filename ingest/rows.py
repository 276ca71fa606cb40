"""A title page's rows: its lines grouped by height, as ``ingest.byline`` and
``ingest.organisations`` read them (cells of one row apart by a wide gap)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ingest.layout import ABSTRACT_RE, TextLine, is_heading

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_CHAR_RE = re.compile(f"[{_HAN}]")
_LONE_HAN_END_RE = re.compile(f"(?:^|[^{_HAN}])[{_HAN}]$")
_LONE_HAN_START_RE = re.compile(f"[{_HAN}](?:$|[^{_HAN}])")
SAME_ROW = 2.0  # points: lines whose tops differ less share a row
SAME_SIZE = 0.6  # points: lines this close in size are set in one size
CELL = "   "  # joins the cells of one row: a wide gap separates names


def rows_of(page: list[TextLine]) -> Iterator[list[TextLine]]:
    """The page's lines grouped into rows (lines whose tops are within two points)."""
    row: list[TextLine] = []
    for line in page:
        if row and abs(line.top - row[0].top) > SAME_ROW:
            yield row
            row = []
        row.append(line)
    if row:
        yield row


def row_after(rows: list[list[TextLine]], end: int, page: list[TextLine]) -> int:
    """The index of the row that holds line ``end`` of the page (the first after a title)."""
    if end >= len(page):
        return len(rows)
    target = page[end]
    return next((i for i, row in enumerate(rows) if target in row), len(rows))


def row_size(row: list[TextLine]) -> float:
    return max(row, key=lambda line: len(line.text)).size


def row_text(row: list[TextLine]) -> str:
    """The row's text, its cells apart by a wide gap. A Chinese name that its printed gap
    split into two cells ("…,周" "旭 1,李" "琢 1,2") is joined again: a cell that ends, or
    starts, with a lone Han character continues the name across the gap."""
    cells: list[str] = []
    for line in row:
        text = line.text.strip()
        if cells and (_LONE_HAN_END_RE.search(cells[-1]) or _LONE_HAN_START_RE.match(text)):
            if _HAN_CHAR_RE.search(cells[-1][-1:]) and _HAN_CHAR_RE.match(text):
                cells[-1] += text
                continue
        cells.append(text)
    return CELL.join(cells)


def ends_byline(row: list[TextLine]) -> bool:
    """Whether a row ends a by-line: the abstract, a heading or a contents line."""
    first = row[0].text
    return bool(ABSTRACT_RE.match(first) or is_heading(first) or is_heading(row_text(row)))


def wraps(row: list[TextLine], nxt: list[TextLine]) -> bool:
    """Whether ``nxt`` is the next line of ``row``'s text: same size, a line below."""
    gap = nxt[0].top - row[0].top
    return abs(row_size(nxt) - row_size(row)) < SAME_SIZE and 0 < gap <= 1.8 * row_size(row)
