"""Pieces every client-side command shares: the --cluster option and error handling."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from resonetics.addresses import parse_address_list
from resonetics.commands.failures import (
    EXIT_BAD_REQUEST,
    EXIT_NEGATIVE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    raise_failure,
)
from resonetics.security.tls import (
    ENV_CA,
    ENV_CERT,
    ENV_CRL,
    ENV_KEY,
    TLSConfig,
    TLSConfigError,
)

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_CLUSTER = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"


def _check_cluster(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse a malformed --cluster before any connection is tried (names the flag)."""
    return ",".join(parse_address_list(value, what="--cluster"))


#: Environment variables for the bearer token (the flags override them).
ENV_TOKEN = "RESONETICS_TOKEN"
ENV_TOKEN_FILE = "RESONETICS_TOKEN_FILE"

cluster_option = click.option(
    "--cluster",
    envvar="RESONETICS_CLUSTER",
    default=DEFAULT_CLUSTER,
    show_default=True,
    help="Comma-separated HOST:PORT of cluster nodes (or $RESONETICS_CLUSTER).",
    callback=_check_cluster,
)
timeout_option = click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Overall deadline, seconds."
)


def tls_options(func: Callable[..., R]) -> Callable[..., R]:
    """Add --tls-ca/--tls-cert/--tls-key/--tls-crl (or $RESONETICS_TLS_*) and pass them as
    ``tls``.

    No option given: ``tls=None``, plain TCP, as before TLS existed.
    """

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        tls_ca: str | None,
        tls_cert: str | None,
        tls_key: str | None,
        tls_crl: str | None,
        **kwargs: Any,
    ) -> R:
        try:
            kwargs["tls"] = TLSConfig.from_paths(tls_ca, tls_cert, tls_key, tls_crl)
        except TLSConfigError as exc:
            raise click.UsageError(str(exc)) from exc
        return func(*args, **kwargs)

    path = click.Path(exists=True, dir_okay=False)
    options = (
        click.option("--tls-ca", type=path, envvar=ENV_CA, help=f"CA certificate (or ${ENV_CA})."),
        click.option(
            "--tls-cert", type=path, envvar=ENV_CERT, help=f"Client certificate (or ${ENV_CERT})."
        ),
        click.option("--tls-key", type=path, envvar=ENV_KEY, help=f"Client key (or ${ENV_KEY})."),
        click.option(
            "--tls-crl",
            type=path,
            envvar=ENV_CRL,
            help=f"The CA's revocation list: refuse a revoked node (or ${ENV_CRL}).",
        ),
    )
    decorated: Callable[..., R] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def token_options(func: Callable[..., R]) -> Callable[..., R]:
    """Add --token / --token-file (or $RESONETICS_TOKEN[_FILE]) and pass them as ``token``.

    A token file holds the token on its first line (as ``resonetics auth init``
    writes it); prefer it to ``--token``, which other users can see in ``ps``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, token: str | None, token_file: str | None, **kwargs: Any) -> R:
        if token is not None and token_file is not None:
            raise click.UsageError("give --token or --token-file, not both")
        if token_file is not None:
            token = read_token_file(token_file)
        kwargs["token"] = token or None
        return func(*args, **kwargs)

    options = (
        click.option(
            "--token", envvar=ENV_TOKEN, help=f"Bearer token for this client (or ${ENV_TOKEN})."
        ),
        click.option(
            "--token-file",
            envvar=ENV_TOKEN_FILE,
            help=f"File holding the bearer token (or ${ENV_TOKEN_FILE}).",
        ),
    )
    decorated: Callable[..., R] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def read_token_file(path: str) -> str:
    """The token on the first line of ``path``; a usage error naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            token = f.readline(4096).strip()
    except OSError as exc:
        raise click.UsageError(f"--token-file {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise click.UsageError(f"--token-file {path}: not a text file") from None
    if not token:
        raise click.UsageError(f"--token-file {path}: empty")
    return token


def client_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Errors leave as one line and an exit code (commands/failures.py), even when this
    command is run on its own rather than under the ``resonetics`` group."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # translated, never swallowed
            raise_failure(exc)

    return wrapper


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def parse_value(text: str, as_json: bool) -> Any:
    if not as_json:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc


__all__ = [
    "EXIT_BAD_REQUEST",
    "EXIT_NEGATIVE",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "client_errors",
    "cluster_option",
    "dumps",
    "parse_value",
    "read_token_file",
    "timeout_option",
    "tls_options",
    "token_options",
]
