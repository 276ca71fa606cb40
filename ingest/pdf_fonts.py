"""Word spaces that pypdf loses in composite fonts without a space glyph.

TeX (xdvipdfmx, LuaTeX) and other producers draw no space character between words: they move
the pen with a number in the ``TJ`` array (``[(word)-257(next)]TJ``), and an extractor has to
tell such a word gap from kerning (a few tens). pypdf (7.1.1) takes half the width of the
font's space glyph as the line between the two. A composite (Type0) font whose ``/ToUnicode``
maps no glyph to a space has none, and pypdf then takes the width of whatever glyph has code
32 (in an ``Identity-H`` font a glyph id, "B" in the CoSAI reports: 752 thousandths of an em),
so every word gap of about a third of an em reads as kerning and the words run together:
"ThispaperaddressesthetopicofincidentresponseinthecontextofAIsystems." (pypdf issue #3978).

Inside ``mended_word_spaces()`` (``ingest.pdf.read_pdf`` reads in it) the font pypdf builds
for such a font gets a space width of at most half its default glyph width (``/DW``), which
is what pypdf itself takes for a font that has neither a space glyph nor a glyph at code 32.
Outside it pypdf is left as it is (the benchmarks time bare pypdf). The width is only ever
lowered, so a font whose code-32 glyph is narrower keeps what pypdf measured (spaces between
Chinese and Latin text in CJK fonts stay as they were). On the 91 shared PDFs (real, dev and
hostile) this changes the text of the five xdvipdfmx files and no other: in the four CoSAI
reports the share of words that pdfminer.six also finds went from 52-76 % to 99-100 %, so
their pages no longer need a pdfminer pass; in the RUC survey Latin citations gained their
space ("GPT-3 [55]").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

_SPACE = " "
_MARK = "_kb_mends_word_spaces"
_MENDING: ContextVar[bool] = ContextVar("kb_mending_word_spaces", default=False)
_INSTALL_LOCK = threading.Lock()


@contextmanager
def mended_word_spaces() -> Iterator[bool]:
    """Within it, the fonts pypdf builds (in this thread or task) get the fix above.

    Yields False, leaving pypdf as it is, when its font class is not the one this fix was
    written for (another pypdf version): the pages whose words run together are then read by
    pdfminer.six, as before.
    """
    installed = install()
    token = _MENDING.set(True)
    try:
        yield installed
    finally:
        _MENDING.reset(token)


def install() -> bool:
    """Wrap pypdf's font builder once per process; the wrapper acts only while mending."""
    try:
        from pypdf.generic._font import Font
    except ImportError:
        log.debug("pypdf has no generic._font.Font; word-space fix not installed")
        return False
    with _INSTALL_LOCK:
        build = Font.__dict__.get("from_font_resource")
        if not isinstance(build, classmethod):
            return False
        if getattr(build.__func__, _MARK, False):
            return True
        if not all(hasattr(Font, name) for name in ("space_width", "space_char", "sub_type")):
            log.debug("pypdf's Font lacks the fields the word-space fix reads; not installed")
            return False
        setattr(Font, "from_font_resource", classmethod(_wrapped(build.__func__)))  # noqa: B010
    return True


def _wrapped(build: Callable[..., Any]) -> Callable[..., Any]:
    def from_font_resource(cls: type, pdf_font_dict: Any) -> Any:
        font = build(cls, pdf_font_dict)
        if _MENDING.get():
            try:
                fix_space_width(font)
            except (AttributeError, TypeError, ValueError):  # a font pypdf built its own way
                pass
        return font

    setattr(from_font_resource, _MARK, True)
    return from_font_resource


def fix_space_width(font: Any) -> None:
    """Lower the space width of a composite ``font`` that has no space glyph (see above)."""
    if font.sub_type != "Type0" or font.space_char != _SPACE:
        return  # not composite, or pypdf found the glyph that maps to a space
    if _SPACE in font.character_map.values():
        return
    widths = font.character_widths
    if not widths.get(_SPACE):
        return  # no glyph at code 32: pypdf already took half the default width
    default = widths.get("default")
    if isinstance(default, int | float) and default > 0:
        font.space_width = min(font.space_width, default // 2)
