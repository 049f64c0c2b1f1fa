"""Making untrusted text visible and harmless wherever it is rendered.

Group values, column names, class labels, paths and error messages come from users' files. An
ANSI escape in one of them (``"\\x1b[2K\\r  accuracy PASSED"``) can erase a terminal line and
print a fake verdict; a bidi override (U+202E) or a zero-width character can make an HTML
report say something other than its data. :func:`visible` turns every such character into the
escape that names it, so the reader sees it; ordinary letters of every script are kept. The
terminal summary, pytest's failure text, JUnit XML properties, the CLI's lines and every value
in the HTML go through it. The JSON report keeps the exact values: it is the record.

This module imports only the standard library (the pytest plugin calls it).
"""

from __future__ import annotations

import unicodedata

__all__ = ["visible", "template_value"]

# control (C0, DEL, C1), format (bidi embeddings, overrides and isolates, zero-width
# characters, BOM, soft hyphen), surrogates, unassigned, line and paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: object, *, newlines: bool = False) -> str:
    """``text`` with every control, format, bidi and separator character written as its escape.

    Parameters
    ----------
    text
        Any value; it is converted with ``str`` first.
    newlines
        Keep line feeds and tabs (for multi-line messages and ``<pre>`` blocks); by default
        they are escaped too, so a value can never start a line of its own.

    Examples
    --------
    >>> visible("\\x1b[2K\\r  accuracy PASSED")
    '\\\\x1b[2K\\\\r  accuracy PASSED'
    >>> visible("caf\\u00e9 \\u202eevil")
    'café \\\\u202eevil'
    >>> visible("two\\nlines", newlines=True)
    'two\\nlines'
    """
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():  # the common case: nothing to do
        return s
    keep = "\n\t" if newlines else ""
    return "".join(_escape(ch) if ch not in keep and unicodedata.category(ch) in _HIDDEN else ch
                   for ch in s)


def template_value(value: object) -> object:
    """A jinja2 ``finalize`` for every ``{{ value }}`` of a report template, before autoescape:
    :func:`visible` with line breaks kept (for ``<pre>``); markup built by the renderer itself
    (plots, which are made safe where they are drawn) passes through."""
    if hasattr(value, "__html__"):
        return value
    return visible(value, newlines=True)
