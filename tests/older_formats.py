"""What releases before 2026-12-07 evening wrote, built from today's formats (tests only).

``snapshot.json`` was format 1, one JSON object holding the replicated state in base64 with
the checksum its last field; the replicated state was format 2 (or 1), one JSON object
holding the machine's bytes as a base64 string. Tests of the readers that still take them
build them here, from a current snapshot, so each older document is the same one everywhere.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec

from resonetics.raft.ready import Snapshot

SORTED = msgspec.json.Encoder(order="sorted")


def older_state_doc(state: bytes, format_: int = 2) -> dict[str, Any]:
    """A format-3 replicated state as the older document: the machine's bytes in base64."""
    head, machine = state.split(b"\n", 1)
    doc = msgspec.json.decode(head)
    assert doc.pop("machine_bytes") == len(machine)
    doc["machine"] = base64.b64encode(machine).decode("ascii")
    doc["format"] = format_
    return doc


def older_state(state: bytes, format_: int = 2) -> bytes:
    return SORTED.encode(older_state_doc(state, format_))


def older_file(snapshot: Snapshot, **extra: object) -> bytes:
    """``snapshot`` as a format-1 ``snapshot.json`` (its state taken as it is)."""
    meta = snapshot.meta
    doc = {
        "format": 1,
        "last_included_index": meta.last_included_index,
        "last_included_term": meta.last_included_term,
        "last_included_hash": meta.last_included_hash,
        "membership": msgspec.to_builtins(meta.membership),
        "state": base64.b64encode(snapshot.data).decode("ascii"),
        **({"signer": meta.signer, "sig": meta.sig} if meta.sig else {}),
        **extra,
    }
    return older_file_sealed(msgspec.json.encode(doc))


def older_file_sealed(body: bytes) -> bytes:
    """A format-1 object with its checksum (over the object without it) spliced in last."""
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return body[:-1] + b',"checksum":"' + digest + b'"}\n'
