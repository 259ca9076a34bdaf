"""Bounds on the shape of JSON a node decodes: UTF-8, nesting depth, item counts.

Theory of operation
-------------------
msgspec and the hash chain's encoder recurse once per nesting level and raise
``RecursionError`` near Python's recursion limit (~1,000 frames, fewer when
the call stack is already deep). A value nested ~990 levels deep decoded fine
but raised while the leader hashed its entry, inside the driver loop, which
stops the node. So depth is bounded *before* any decoder sees a line:

* ``check_line(line)``: the line must be UTF-8 (an ASCII line, the common case,
  is known to be after one ``isascii()``) and nested at most
  ``limits.LINE_DEPTH_MAX`` levels. The depth test is cheap on the hot path:
  a short line with no more ``[``/``{`` bytes than the limit cannot be nested
  deeper (two ``bytes.count`` calls); a line with more, or a long one, is scanned
  exactly (``nesting_depth``), with strings removed first because they may hold
  brackets. Strings are removed with ``bytes`` methods (escape pairs dropped, every
  byte but brackets and quotes deleted, then a split on ``"``: ``bracket_skeleton``),
  not a regular expression: a peer's AppendEntries of 256 entries has thousands of
  brackets, and the regex cost three times the decode of the line.
* ``value_shape(value, ...)``: after decoding, the depth and the largest
  array/object of one value, walked iteratively (no recursion), stopping as
  soon as a limit is passed. Callers run it only when a cheap bound on the
  value's text says a limit could be passed.
"""

from __future__ import annotations

from typing import Any, Final

from resonetics import limits
from resonetics.errors import BadRequest

#: ``{``/``}`` as ``[``/``]``: for depth, which kind of container does not matter.
_SQUARE: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")
#: Lines up to this long are cleared by counting their openers (a client request holds
#: a few); a longer one goes straight to ``nesting_depth``, whose first pass costs
#: about what the count would.
_COUNTED_LINE_BYTES_MAX: Final = 2048
_NOT_BRACKET_OR_QUOTE: Final = bytes(b for b in range(256) if b not in b'[]{}"')


def openers_bound(text: bytes) -> int:
    """An upper bound of ``text``'s nesting depth: how many ``[`` and ``{`` it holds."""
    return text.count(b"[") + text.count(b"{")


def nesting_depth(text: bytes, cap: int) -> int:
    """The nesting depth of the JSON ``text``, or any number > ``cap`` once it passes ``cap``.

    Never less than the depth a decoder would reach on ``text``, even when ``text``
    is not valid JSON (unclosed brackets count; an unterminated string is not
    treated as a string): so a result <= ``cap`` means decoding it cannot recurse
    deeper than ``cap``. Callers try ``openers_bound`` first on short lines. Each
    round deletes every innermost ``[]`` pair, which lowers the depth of properly
    nested brackets by exactly one.
    """
    brackets = bracket_skeleton(text)
    depth = 0
    while brackets and depth <= cap:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            # Unbalanced (invalid JSON): every opener left may still enclose the rest.
            return depth + brackets.count(b"[")
        depth += 1
        brackets = shorter
    return depth


def bracket_skeleton(text: bytes) -> bytes:
    """The brackets of ``text`` outside its JSON strings, ``{}`` as ``[]``: exactly
    ``outside_strings(text).translate(_SQUARE, _NOT_BRACKET)``, made cheaply.

    A peer's AppendEntries line holds over a thousand quotes; splitting the whole line
    on them cost twice the line's decode. Here one ``translate`` first keeps only
    brackets and quotes (escape pairs dropped before, as ``outside_strings`` does), so
    a string with no bracket in it is left as ``""``. With an even number of quotes,
    deleting any two adjacent ones changes nothing outside the strings (an empty
    string goes, or a closing and the next opening quote with nothing between them
    merge two strings), so those go in one ``replace`` and the split, if any quote is
    left, runs on a few bytes. An odd number (not JSON) takes the plain path.
    """
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = text.translate(_SQUARE, _NOT_BRACKET_OR_QUOTE)
    if b'"' not in marks:
        return marks
    if marks.count(b'"') % 2 == 0:
        marks = marks.replace(b'""', b"")
    return outside_strings(marks)


def outside_strings(text: bytes) -> bytes:
    """``text`` without its JSON strings (an unterminated one is kept: it is not a string).

    Escape pairs go first, left to right: ``\\\\`` (an escaped backslash), then ``\\"``
    (an escaped quote); every ``"`` left opens or closes a string. On JSON this is
    exactly the strings; a backslash outside a string (not JSON) may shift what is
    counted after it, but a decoder stops there, so what it reaches is never deeper.
    """
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    parts = text.split(b'"')
    outside = parts[0::2]
    if len(parts) % 2 == 0:  # an odd number of quotes: the last one opens no string
        outside.append(parts[-1])
    return b"".join(outside)


def check_line(line: bytes) -> None:
    """``BadRequest`` naming ``line`` unless it is UTF-8 nested <= LINE_DEPTH_MAX levels."""
    if not line.isascii():
        try:
            line.decode("utf-8")  # strict: refuses overlong forms and encoded surrogates
        except UnicodeDecodeError as exc:
            raise BadRequest("line", f"not valid UTF-8 (byte {exc.start})") from None
    cap = limits.LINE_DEPTH_MAX
    if len(line) <= _COUNTED_LINE_BYTES_MAX:
        deep = openers_bound(line) > cap and nesting_depth(line, cap) > cap
    else:  # a peer's AppendEntries: hundreds of openers, the count would only add a pass
        deep = nesting_depth(line, cap) > cap
    if deep:
        raise BadRequest(
            "line", f"nested deeper than {cap} levels (a value may nest {limits.JSON_DEPTH_MAX})"
        )


def value_shape(value: Any, *, depth_max: int, items_max: int) -> tuple[int, int]:
    """(depth, most items in one array/object) of a decoded JSON value.

    Stops early, returning what it has seen, once the depth passes ``depth_max``
    or a container passes ``items_max``; so the result says whether a limit was
    passed, and the walk costs no more than the limits allow.
    """
    deepest = 0
    widest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        widest = max(widest, len(children))
        if deepest > depth_max or widest > items_max:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest, widest


def check_value(field: str, value: Any) -> None:
    """``BadRequest`` naming ``field`` if ``value`` is nested or wide past the limits."""
    depth_max, items_max = limits.JSON_DEPTH_MAX, limits.JSON_ITEMS_MAX
    depth, items = value_shape(value, depth_max=depth_max, items_max=items_max)
    if depth > depth_max:
        raise BadRequest(field, f"nested deeper than {depth_max} levels")
    if items > items_max:
        raise BadRequest(field, f"an array or object holds more than {items_max} items")


__all__ = [
    "bracket_skeleton",
    "check_line",
    "check_value",
    "nesting_depth",
    "openers_bound",
    "value_shape",
]
