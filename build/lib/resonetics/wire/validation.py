"""Turn msgspec's decode errors into ``BadRequest(field, reason)`` a user can act on.

msgspec reports ``Expected `str`, got `int` - at `$.args.k```; a client should
read ``args.k: must be a string, got int``. The path is re-rooted because each
layer decodes a slice of the line (the payload, then the args) on its own: the
caller passes the prefix the slice lives under.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from resonetics.errors import BadRequest

_AT: Final = re.compile(r"^(?P<reason>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_EXPECTED: Final = re.compile(r"^Expected `(?P<want>[^`]+)`(?P<rest>.*)$", re.DOTALL)
_GOT: Final = re.compile(r"^, got `(?P<got>[^`]+)`$")
_MISSING: Final = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")

#: msgspec's type names in the words a JSON user knows.
_TYPE_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _words(type_name: str) -> str:
    return _TYPE_WORDS.get(type_name, type_name.replace("`", ""))


def _alternatives(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _join(prefix: str, path: str) -> str:
    path = path.lstrip(".")
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}.{path}" if not path.startswith("[") else f"{prefix}{path}"


def _reason(message: str) -> tuple[str, str]:
    """(extra path, reason) for a message without its ``- at`` suffix."""
    missing = _MISSING.match(message)
    if missing:
        return missing["name"], "missing required field"
    unknown = _UNKNOWN.match(message)
    if unknown:
        return unknown["name"], "unknown field"
    expected = _EXPECTED.match(message)
    if expected:
        want = _alternatives([_words(part) for part in expected["want"].split(" | ")])
        got = _GOT.match(expected["rest"])
        if got:
            return "", f"must be {want}, got {got['got']}"
        return "", f"must be {want}{expected['rest']}"
    return "", message[:1].lower() + message[1:]


def bad_request_from(exc: msgspec.DecodeError, *, prefix: str = "", root: str = "") -> BadRequest:
    """The ``BadRequest`` for a msgspec error raised while decoding a slice at ``prefix``.

    ``root`` names the field when the error is about the slice as a whole
    (malformed JSON, wrong top-level type): ``line`` for a whole line,
    ``payload`` for a payload.
    """
    message = str(exc)
    at = _AT.match(message)
    path = ""
    if at:
        message, path = at["reason"], at["path"]
    if not isinstance(exc, msgspec.ValidationError):
        return BadRequest(root or prefix or "line", f"not valid JSON ({message})")
    extra, reason = _reason(message)
    field = _join(_join(prefix, path), extra)
    return BadRequest(field or root or "line", reason)


__all__ = ["bad_request_from"]
