"""``resonetics kv put|get|del|cas|scan|txn|watch``: the key-value store from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click
import msgspec

from resonetics import limits
from resonetics.client import Client
from resonetics.commands.common import (
    EXIT_NEGATIVE,
    client_errors,
    cluster_option,
    dumps,
    parse_value,
    timeout_option,
    tls_options,
    token_options,
)
from resonetics.errors import BadRequest, TooLarge
from resonetics.security.tls import TLSConfig

json_option = click.option("--json", "as_json", is_flag=True, help="Parse VALUE as JSON.")
file_option = click.option(
    "--file",
    "file_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read VALUE from this file, byte for byte (give no VALUE). VALUE - reads stdin.",
)

#: Most bytes read for one value from stdin or a file: past this the value is surely
#: over VALUE_BYTES_MAX encoded, so the rest is not read into memory at all.
VALUE_READ_BYTES_MAX = limits.LINE_BYTES_MAX


def read_value(value: str | None, file_path: Path | None, as_json: bool) -> Any:
    """VALUE as typed, or read from stdin (``-``) or ``--file``; parsed when ``--json``.

    What is read is the value exactly (a trailing newline included): use
    ``printf`` rather than ``echo`` to store text without one, or ``--json``.
    """
    if value is not None and file_path is not None:
        raise click.UsageError("give VALUE or --file, not both")
    if value is None and file_path is None:
        raise click.UsageError("missing VALUE (or - to read it from stdin, or --file PATH)")
    if file_path is not None:
        with file_path.open("rb") as f:
            return parse_value(_read_text(f, str(file_path)), as_json)
    assert value is not None
    if value == "-":
        return parse_value(_read_text(sys.stdin.buffer, "stdin"), as_json)
    return parse_value(value, as_json)


def _read_text(stream: BinaryIO, source: str) -> str:
    data = stream.read(VALUE_READ_BYTES_MAX + 1)
    if len(data) > VALUE_READ_BYTES_MAX:
        raise TooLarge(
            f"{source}: more than {VALUE_READ_BYTES_MAX} bytes; a value may be at most "
            f"{limits.VALUE_BYTES_MAX} bytes encoded"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(source, f"not UTF-8 text (byte {exc.start})") from None


@click.group()
def kv() -> None:
    """Read and write keys. Values are strings unless --json is given."""


@kv.command()
@click.argument("key")
@click.argument("value", required=False)
@json_option
@file_option
@click.option(
    "--lease",
    "lease_id",
    type=click.IntRange(min=1),
    default=None,
    help="Attach KEY to this lease (resonetics lease grant): deleted when it ends.",
)
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def put(
    key: str,
    value: str | None,
    as_json: bool,
    file_path: Path | None,
    lease_id: int | None,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Set KEY to VALUE (- : from stdin); prints the write's receipt (index, term, hash)."""
    new = read_value(value, file_path, as_json)
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        if lease_id is None:
            receipt = client.put(key, new)
        else:
            receipt = client.put(key, new, lease=lease_id)
    click.echo(dumps({"index": receipt.index, "term": receipt.term, "hash": receipt.hash}))


@kv.command()
@click.argument("key")
@click.option("--stale", is_flag=True, help="Answer from any node's applied state (may lag).")
@click.option(
    "--meta",
    is_flag=True,
    help="Print {value, create_index, mod_index, version} instead of the value alone.",
)
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def get(
    key: str,
    stale: bool,
    meta: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Print KEY's value as JSON (exit 1 if absent)."""
    consistency = "stale" if stale else "linearizable"
    args: dict[str, Any] = {"k": key, "consistency": consistency}
    if meta:
        args["meta"] = True
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call("kv_get", args)
    if not result.get("found"):
        click.echo(f"{key}: not found", err=True)
        sys.exit(EXIT_NEGATIVE)
    if meta:
        fields = ("value", "create_index", "mod_index", "version")
        click.echo(dumps({n: result[n] for n in fields}))
        return
    click.echo(dumps(result["value"]))


@kv.command(name="del")
@click.argument("key")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def delete(
    key: str, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Delete KEY (exit 1 if it was absent)."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        deleted = client.delete(key)
    click.echo("deleted" if deleted else f"{key}: not found")
    if not deleted:
        sys.exit(EXIT_NEGATIVE)


@kv.command()
@click.argument("key")
@click.argument("expected")
@click.argument("value", required=False)
@json_option
@file_option
@click.option("--absent", is_flag=True, help="Expect KEY to be absent (EXPECTED is ignored).")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def cas(
    key: str,
    expected: str,
    value: str | None,
    as_json: bool,
    file_path: Path | None,
    absent: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Set KEY to VALUE (- : from stdin) only if it holds EXPECTED (exit 1 if it did not)."""
    want = None if absent else parse_value(expected, as_json)
    new = read_value(value, file_path, as_json)
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call("kv_cas", {"k": key, "expected": want, "v": new})
    click.echo(dumps({"swapped": result["swapped"], "value": result["value"]}))
    if not result["swapped"]:
        sys.exit(EXIT_NEGATIVE)


@kv.command()
@click.argument("prefix", default="")
@click.option("--limit", type=int, default=100, show_default=True, help="Keys per page.")
@click.option("--after", default=None, help="Start strictly after this key (a page's next).")
@click.option("--all", "all_pages", is_flag=True, help="Page through every key under PREFIX.")
@click.option(
    "--consistent",
    is_flag=True,
    help="With --all: every page as of the first page's index, or fail (exit 1) if the "
    "range changed meanwhile.",
)
@click.option("--stale", is_flag=True, help="Answer from any node's applied state (may lag).")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def scan(
    prefix: str,
    limit: int,
    after: str | None,
    all_pages: bool,
    consistent: bool,
    stale: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """List keys starting with PREFIX, in key order, one `key<TAB>value` per line.

    Without --all, one page: when more keys follow, the key to pass as --after
    is printed on stderr.
    """
    if not 1 <= limit <= limits.SCAN_LIMIT_MAX:
        raise click.BadParameter(f"must be 1..{limits.SCAN_LIMIT_MAX}", param_hint="--limit")
    if consistent and not all_pages:
        raise click.UsageError("--consistent goes with --all")
    consistency = "stale" if stale else "linearizable"
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        at_index: int | None = None
        while True:
            page = client.scan(
                prefix, limit, consistency=consistency, after=after, at_index=at_index
            )
            for key, value in page:
                click.echo(f"{key}\t{dumps(value)}")
            if not page.more:
                return
            if not all_pages:
                click.echo(f"... more keys; continue with --after {page.next}", err=True)
                return
            after = page.next
            if consistent and at_index is None:
                at_index = page.state_index


#: Most bytes read for one txn spec (a file or stdin).
TXN_SPEC_BYTES_MAX = limits.LINE_BYTES_MAX


@kv.command()
@click.argument("spec", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def txn(spec: Path, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None) -> None:
    """Run the transaction in SPEC (a JSON or TOML file; - : JSON from stdin).

    SPEC has `compare`, `then` and `else` lists, as the kv_txn op takes them
    (docs/protocol.md). Prints {succeeded, responses, receipt}; exit 1 if the
    compares did not all hold (the else branch ran).
    """
    args = read_txn_spec(spec)
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call("kv_txn", args)
    click.echo(dumps({k: result.get(k) for k in ("succeeded", "responses", "receipt")}))
    if not result.get("succeeded"):
        sys.exit(EXIT_NEGATIVE)


def read_txn_spec(spec: Path) -> dict[str, Any]:
    """The txn in a JSON or TOML file (by content: TOML when it is not JSON), or stdin."""
    source = "stdin" if str(spec) == "-" else str(spec)
    if str(spec) == "-":
        text = _read_spec(sys.stdin.buffer, source)
    else:
        try:
            with spec.open("rb") as f:
                text = _read_spec(f, source)
        except OSError as exc:
            raise click.BadParameter(f"{source}: {exc.strerror}", param_hint="SPEC") from None
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as json_error:
        import tomllib  # only txn specs that are not JSON need it: kv get starts faster

        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as toml_error:
            raise click.BadParameter(
                f"{source}: neither JSON ({json_error.msg} at line {json_error.lineno}) "
                f"nor TOML ({toml_error})",
                param_hint="SPEC",
            ) from None
    if not isinstance(parsed, dict):
        raise click.BadParameter(
            f"{source}: must be an object with compare/then/else", param_hint="SPEC"
        )
    unknown = sorted(set(parsed) - {"compare", "then", "else"})
    if unknown:
        raise click.BadParameter(
            f"{source}: unknown field {unknown[0]!r}; expected compare, then, else",
            param_hint="SPEC",
        )
    return parsed


def _read_spec(stream: BinaryIO, source: str) -> str:
    data = stream.read(TXN_SPEC_BYTES_MAX + 1)
    if len(data) > TXN_SPEC_BYTES_MAX:
        raise TooLarge(f"{source}: more than {TXN_SPEC_BYTES_MAX} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(source, f"not UTF-8 text (byte {exc.start})") from None


@kv.command()
@click.argument("prefix", default="")
@click.option(
    "--from",
    "from_index",
    type=click.IntRange(min=1),
    default=None,
    help="Start at this log index (default: the changes after now).",
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def watch(
    prefix: str,
    from_index: int | None,
    count: int | None,
    as_json: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Follow changes under PREFIX, in log order, each once, across node failures.

    Prints `index<TAB>put|delete<TAB>key<TAB>value` per change (or JSON with term and
    chain hash); exit 2 naming the oldest index still available when --from is compacted.
    """
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        stream = client.watch(prefix, from_index)
        try:
            for seen, event in enumerate(stream, start=1):
                if as_json:
                    click.echo(dumps(msgspec.to_builtins(event)))
                else:
                    value = "" if event.kind == "delete" else dumps(event.value)
                    click.echo(f"{event.index}\t{event.kind}\t{event.key}\t{value}")
                if count is not None and seen >= count:
                    break
        finally:
            stream.close()
