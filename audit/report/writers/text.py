"""Escaping of user-controlled strings (class names, rule messages, sample ids, metadata) for the plain-text
outputs: JUnit XML and summary.md. HTML/PDF escaping is Jinja's autoescape, not this module.

Both start from :func:`visible`: characters that XML 1.0 forbids or that hide or reorder text are written as
Python-style escapes (``\\x1b``, ``\\ufffe``, ``\\ud800``) so a reader sees that they were there.
"""

from __future__ import annotations

import re
from typing import Any

# Bidirectional overrides/isolates and marks: they reorder what a reviewer reads ("Trojan Source").
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# XML 1.0 Char minus tab/LF/CR, C1 controls (legal but "discouraged", and invisible), surrogates, U+FFFE/U+FFFF.
_INVISIBLE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff{_BIDI}]")

# ASCII punctuation that is backslash-escaped in Markdown. Left as is: , ' " / ; ? % (never syntax inline),
# - and = (only syntax at the start of a line: handled there), & < > (written as entities).
_MD_PUNCT = frozenset("\\`*_{}[]()#+!|~$^@:.")
_MD_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# After these, a word joiner (U+2060, invisible) stops the linkers that run on the rendered text rather than on
# the Markdown: GitHub @mentions and #123 references, :emoji: shortcodes, scheme:// URLs of GitLab's autolinker.
_DEFUSE = frozenset("@#:")
WORD_JOINER = "\u2060"
_DIGITS = "0123456789"


def _escape_char(m: re.Match[str]) -> str:
    c = m.group()
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def visible(value: Any) -> str:
    """``str(value)`` ("" for None) with XML-illegal, control, surrogate and bidi characters as visible escapes.

    The result is legal XML 1.0 character data, encodes as UTF-8 (no lone surrogates) and reads in order.
    """
    s = "" if value is None else str(value)
    return _INVISIBLE.sub(_escape_char, s)


def xml_text(value: Any) -> str:
    """A string safe to give ElementTree as text or attribute value (ElementTree escapes ``<&>"`` itself)."""
    return visible(value)


def truncate(s: str, limit: int | None) -> str:
    """``s`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return s if limit is None or len(s) <= limit else s[: max(limit - 1, 0)] + "…"


def md_text(value: Any, limit: int | None = None, *, defuse: bool = True) -> str:
    """Inline Markdown that renders as exactly the visible text of ``value`` (whitespace runs, newlines included,
    become one space, so it is safe in a table cell or a heading), with no active content in CommonMark or GFM:

    - ASCII punctuation with Markdown meaning is backslash-escaped: no emphasis, code, links, images, tables
      (``|``), strikethrough, math; ``.`` and ``:`` too, which also breaks bare URLs, ``www.`` links and e-mail
      autolinks (``.`` between two digits, and ``:`` before a space, stay plain: numbers and prose read well);
    - ``&``, ``<``, ``>`` become entities: no raw HTML, no ``<http://…>`` autolinks, no entity tricks;
    - a leading ``-`` (unless before a digit) or ``=`` is escaped: no list, rule or setext heading;
    - a word joiner follows ``@``, ``#`` and ``:`` before a non-space, for the linkers that run on rendered text
      (GitHub mentions and references in a pull-request comment). ``defuse=False`` leaves it out: in documents a
      person reads and copies from (model card, Annex IV) an invisible character would corrupt a copied address or
      time; there such values are written with :func:`md_literal`.
    """
    s = " ".join(truncate(visible(value), limit).split())
    out: list[str] = []
    n = len(s)
    for i, c in enumerate(s):
        nxt = s[i + 1] if i + 1 < n else ""
        digit_next = bool(nxt) and nxt in _DIGITS
        plain = ((c == "." and i > 0 and s[i - 1] in _DIGITS and digit_next)  # 0.95
                 or (c == ":" and (not nxt or nxt.isspace())))  # "samples: …"
        if c in _MD_ENTITY:
            out.append(_MD_ENTITY[c])
        elif not plain and (c in _MD_PUNCT or (i == 0 and (c == "=" or (c == "-" and not digit_next)))):
            out.append("\\" + c)
        else:
            out.append(c)
        if defuse and c in _DEFUSE and nxt and not nxt.isspace():
            out.append(WORD_JOINER)
    return "".join(out)


def md_literal(value: Any, limit: int | None = None) -> str:
    """A value a reader copies (an e-mail address, a time, a hash, a path) as a code span: raw and rendered text are
    exactly the value (whitespace runs as one space, controls as visible escapes), with no escape and no invisible
    character; nothing inside a code span is a link, mention or markup. "—" for an empty value; a value with ``|``
    (which would split a table cell even inside a code span) as :func:`md_text` without word joiners."""
    s = " ".join(truncate(visible(value), limit).split())
    if not s:
        return "—"
    if "|" in s:
        return md_text(s, defuse=False)
    fence = "`" * (max((len(run) for run in re.findall("`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_CODE_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def md_code(value: Any, limit: int = 80) -> str:
    """An identifier (rule id, report name) as a code span when it is plainly one, else as :func:`md_text`."""
    s = "" if value is None else str(value)
    if len(s) <= limit and _CODE_SAFE.fullmatch(s):
        return f"`{s}`"
    return md_text(s, limit)
