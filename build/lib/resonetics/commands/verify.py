"""``resonetics verify PATH [--receipt JSON_OR_FILE]``: audit node folders, read-only.

For a data dir of several nodes the commit index is derived from the logs (see
``storage/verify_history.py``), not read from meta.json. Verify only reads: it
takes no data dir lock and runs beside live nodes (a line being appended at
that moment reads as a torn tail, a note).

Exit status: 0 when every check passes (and the receipt, if given, is held),
1 when a check fails or the receipt is not held, 2 on a usage error (click's).
A corrupt file is a verdict, never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from resonetics.security.audit import audit_entries, audit_snapshot, describe
from resonetics.security.signing import SigningError, TrustRegistry
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import (
    ClusterReport,
    NodeReport,
    Receipt,
    receipt_status,
    verify_path,
)


def _parse_receipt(text: str) -> Receipt:
    """A receipt is inline JSON or the name of a file holding it."""
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    try:
        doc = json.loads(text)
        index, term, hash_ = doc["index"], doc["term"], doc["hash"]
    except (ValueError, TypeError, KeyError) as exc:
        raise click.BadParameter(f"expected {{index, term, hash}} as JSON: {exc}") from None
    if not (isinstance(index, int) and isinstance(term, int) and isinstance(hash_, str)):
        raise click.BadParameter("index and term must be integers, hash a string")
    return Receipt(index=index, term=term, hash=hash_)


def _describe(node: NodeReport) -> list[str]:
    if node.anchor is None:
        head = f"{node.name}: CORRUPT (log unreadable)"
    else:
        verdict = "OK" if node.ok else "CORRUPT"
        term = node.meta.hard_state.term if node.meta else "?"
        head = (
            f"{node.name}: {verdict}  entries={len(node.entries)} "
            f"indexes={node.anchor.index}..{node.last_index} term={term} "
            f"commit_hint={node.commit}\n"
            f"  last hash {node.last_hash}"
        )
    lines = [head]
    lines += [f"  problem: {p}" for p in node.problems]
    lines += [f"  note: {n}" for n in node.notes]
    return lines


def _receipt_lines(report: ClusterReport, receipt: Receipt) -> tuple[list[str], bool]:
    """Held when some node holds it and no node contradicts it at a committed index."""
    lines = [f"receipt index={receipt.index} term={receipt.term} hash={receipt.hash}:"]
    held = False
    contradicted = False
    for node in report.nodes:
        status = receipt_status(node, receipt)
        held = held or status == "holds"
        if status == "differs" and receipt.index <= report.committed_bound(node):
            contradicted = True
            status = "DIFFERS at a committed index"
        lines.append(f"  {node.name}: {status}")
    ok = held and not contradicted
    lines.append("  receipt: " + ("HELD" if ok else "NOT HELD"))
    return lines, ok


def _signature_lines(report: ClusterReport, keys_path: str, require_signed: bool) -> bool:
    try:
        registry = TrustRegistry.load(Path(keys_path))
    except SigningError as exc:
        raise click.BadParameter(str(exc), param_hint="--keys") from None
    ok = True
    for node in report.nodes:
        audit = audit_entries(node.entries, registry, require_signed=require_signed)
        click.echo(f"signatures {node.name}: {describe(audit) or 'no entries'}")
        for problem in audit.problems:
            click.echo(f"  problem: {problem}")
        ok = ok and not audit.problems
        if node.snapshot is not None:
            verdict, snap_problem = audit_snapshot(
                node.snapshot, registry, require_signed=require_signed
            )
            signer = f" by {node.snapshot.meta.signer}" if node.snapshot.meta.signer else ""
            click.echo(f"snapshot signature {node.name}: {verdict.value.lower()}{signer}")
            if snap_problem is not None:
                click.echo(f"  problem: {snap_problem}")
                ok = False
    return ok


@click.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--receipt",
    metavar="JSON_OR_FILE",
    help='A write\'s receipt {"index":..,"term":..,"hash":..}: is that entry in the history?',
)
@click.option(
    "--keys",
    "keys_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Trust registry (node id -> ed25519 public key): check every entry's signature.",
)
@click.option(
    "--require-signed", is_flag=True, help="With --keys: an unsigned entry is a failure too."
)
def verify(path: str, receipt: str | None, keys_path: str | None, require_signed: bool) -> None:
    """Check a node folder, or a data dir of node folders, without changing a byte."""
    parsed_receipt = _parse_receipt(receipt) if receipt is not None else None
    fs = OsFileSystem()
    report = verify_path(fs, path)
    for node in report.nodes:
        click.echo("\n".join(_describe(node)))
    if report.commit_index is not None:
        click.echo(f"commit index {report.commit_index} (derived from the logs: {report.voters})")
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    for note in report.notes:
        click.echo(f"note: {note}")
    ok = report.ok
    if parsed_receipt is not None:
        lines, held = _receipt_lines(report, parsed_receipt)
        click.echo("\n".join(lines))
        ok = ok and held
    if keys_path is not None:
        ok = _signature_lines(report, keys_path, require_signed) and ok
    click.echo("verdict: " + ("OK" if ok else "FAILED"))
    fs.close()
    if not ok:
        raise SystemExit(1)
