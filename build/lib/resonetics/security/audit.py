"""Who vouched for each entry: signature checks for ``resonetics verify --keys``.

For every entry after a node's anchor, the stored ``author``/``sig`` is checked
against the trust registry (``TrustRegistry.verify``). A bad signature or an author
the registry does not know fails the audit; an unsigned entry fails it only with
``require_signed`` (logs written before signing was switched on, or by nodes
running without ``--sign-entries``, are unsigned). Raft allows one leader per term,
and only a leader creates entries, so two authors signing entries of the same term
prove a forged or Byzantine leader: that fails the audit too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.ready import Snapshot
from resonetics.security.signing import EntrySignature, SignatureCheck, TrustRegistry
from resonetics.security.snapshot_signing import verify_snapshot

_ANCHORS = (EntryType.GENESIS, EntryType.SNAP_DUMMY)


@dataclass(slots=True)
class SignatureAudit:
    """The verdict counts of one node's log and what is wrong with it."""

    counts: Counter[SignatureCheck] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def signature_of(entry: Entry) -> EntrySignature | None:
    if isinstance(entry.author, str) and isinstance(entry.sig, str):
        return EntrySignature(entry.author, entry.sig)
    return None


def audit_entries(
    entries: Iterable[Entry], registry: TrustRegistry, *, require_signed: bool = False
) -> SignatureAudit:
    audit = SignatureAudit()
    authors_by_term: dict[int, str] = {}
    first_bad: dict[SignatureCheck, int] = {}
    for entry in entries:
        if entry.type in _ANCHORS:
            continue
        signature = signature_of(entry)
        verdict = registry.verify(entry.hash, signature)
        audit.counts[verdict] += 1
        failing = verdict in (SignatureCheck.BAD_SIGNATURE, SignatureCheck.UNKNOWN_AUTHOR) or (
            require_signed and verdict is SignatureCheck.UNSIGNED
        )
        if failing:
            first_bad.setdefault(verdict, entry.index)
        if verdict is SignatureCheck.VALID and signature is not None:
            earlier = authors_by_term.setdefault(entry.term, signature.author)
            if earlier != signature.author:
                audit.problems.append(
                    f"term {entry.term} has entries signed by both {earlier} and "
                    f"{signature.author} (index {entry.index}): two leaders in one term"
                )
    for verdict, index in sorted(first_bad.items()):
        audit.problems.append(
            f"{audit.counts[verdict]} {verdict.value} entr{'y' if audit.counts[verdict] == 1 else 'ies'}, "
            f"the first at index {index}"
        )
    return audit


def audit_snapshot(
    snapshot: Snapshot, registry: TrustRegistry, *, require_signed: bool = False
) -> tuple[SignatureCheck, str | None]:
    """The verdict on a node's ``snapshot.json`` signature, and the problem if it fails.

    An unsigned snapshot fails only with ``require_signed`` (taken before signing was
    switched on, or by a node without a signing setting), as unsigned entries do.
    """
    verdict = verify_snapshot(registry, snapshot)
    meta = snapshot.meta
    where = f"snapshot at index {meta.last_included_index}"
    if verdict is SignatureCheck.BAD_SIGNATURE:
        return verdict, f"{where}: signature by {meta.signer!r} does not verify"
    if verdict is SignatureCheck.UNKNOWN_AUTHOR:
        return verdict, f"{where}: signed by {meta.signer!r}, who is not in the registry"
    if verdict is SignatureCheck.UNSIGNED and require_signed:
        return verdict, f"{where}: unsigned"
    return verdict, None


def describe(audit: SignatureAudit) -> str:
    order = list(SignatureCheck)
    return ", ".join(f"{v.value.lower()}={audit.counts[v]}" for v in order if audit.counts[v])


__all__ = ["SignatureAudit", "audit_entries", "audit_snapshot", "describe", "signature_of"]
