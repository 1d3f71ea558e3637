"""Text for a terminal: control characters from config text or a mount point's name are shown, not obeyed.

ESC could rewrite the screen or the window title, BEL rings, CR overwrites a
line, and the bidirectional overrides (U+202E...) make text read backwards.
Each is written as a visible escape (`\\x1b`, `\\u202e`); everything else,
Chinese included, stays as it is.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_CONTROLS_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, one_line: bool = False) -> str:
    """`text` with control characters escaped; newlines and tabs kept unless `one_line` (a table cell)."""
    return (_CONTROLS_ONE_LINE if one_line else _CONTROLS).sub(_escape, str(text))
