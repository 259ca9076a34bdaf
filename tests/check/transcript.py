"""Hand-written histories as short transcripts, one event per line.

    0 invoke set 1            process, type, f, then an optional JSON value
    0 ok     set 1            (no spaces inside it) and optional flags:
    1 invoke cas [1,2]        key=NAME (default "k"), success=false, deleted=true
    1 ok     cas [1,2] success=false

Blank lines and lines starting with ``#`` are skipped; ``nemesis ...`` lines
become events whose process is not an int, which the parser must ignore.
"""

from __future__ import annotations

import json
from typing import Any

from resonetics.check.history import Operation, parse_history


def events(text: str) -> list[dict[str, Any]]:
    """The transcript as a list of JSON-ready event dicts."""
    out: list[dict[str, Any]] = []
    for number, raw in enumerate(text.strip().splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("nemesis"):
            out.append({"process": "nemesis", "type": "info", "f": line.split()[1]})
            continue
        process, kind, f, *rest = line.split()
        event: dict[str, Any] = {
            "process": int(process),
            "type": kind,
            "f": f,
            "key": "k",
            "value": None,
            "time": number,
        }
        for token in rest:
            if "=" in token:
                name, value = token.split("=", 1)
                event[name] = value if name == "key" else json.loads(value)
            else:
                event["value"] = json.loads(token)
        out.append(event)
    return out


def jsonl(text: str) -> str:
    """The transcript as ``.jsonl`` text."""
    return "".join(json.dumps(e) + "\n" for e in events(text))


def ops(text: str) -> list[Operation]:
    """The transcript parsed and paired, as the checker sees it."""
    return parse_history(jsonl(text).splitlines(), source="<transcript>")
