"""``resonetics kv put|get|del|cas|scan``: the key-value store from the shell."""

from __future__ import annotations

import sys

import click

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
from resonetics.security.tls import TLSConfig

json_option = click.option("--json", "as_json", is_flag=True, help="Parse VALUE as JSON.")


@click.group()
def kv() -> None:
    """Read and write keys. Values are strings unless --json is given."""


@kv.command()
@click.argument("key")
@click.argument("value")
@json_option
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def put(
    key: str,
    value: str,
    as_json: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Set KEY to VALUE; prints the write's receipt (index, term, chain hash)."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        receipt = client.put(key, parse_value(value, as_json))
    click.echo(dumps({"index": receipt.index, "term": receipt.term, "hash": receipt.hash}))


@kv.command()
@click.argument("key")
@click.option("--stale", is_flag=True, help="Answer from any node's applied state (may lag).")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def get(
    key: str, stale: bool, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Print KEY's value as JSON (exit 1 if absent)."""
    consistency = "stale" if stale else "linearizable"
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call("kv_get", {"k": key, "consistency": consistency})
    if not result.get("found"):
        click.echo(f"{key}: not found", err=True)
        sys.exit(EXIT_NEGATIVE)
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
@click.argument("value")
@json_option
@click.option("--absent", is_flag=True, help="Expect KEY to be absent (EXPECTED is ignored).")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def cas(
    key: str,
    expected: str,
    value: str,
    as_json: bool,
    absent: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Set KEY to VALUE only if it holds EXPECTED (exit 1 if it did not)."""
    want = None if absent else parse_value(expected, as_json)
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call(
            "kv_cas", {"k": key, "expected": want, "v": parse_value(value, as_json)}
        )
    click.echo(dumps({"swapped": result["swapped"], "value": result["value"]}))
    if not result["swapped"]:
        sys.exit(EXIT_NEGATIVE)


@kv.command()
@click.argument("prefix", default="")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--stale", is_flag=True, help="Answer from any node's applied state (may lag).")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def scan(
    prefix: str,
    limit: int,
    stale: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """List keys starting with PREFIX, in key order, one `key<TAB>value` per line."""
    consistency = "stale" if stale else "linearizable"
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call(
            "kv_scan", {"prefix": prefix, "limit": limit, "consistency": consistency}
        )
    for key, value in result["items"]:
        click.echo(f"{key}\t{dumps(value)}")
    if result.get("more"):
        click.echo(f"... more keys after the first {limit}", err=True)
