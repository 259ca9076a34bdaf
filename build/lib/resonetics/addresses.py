"""Node addresses (``HOST:PORT``) as typed by people: checked once, where they enter.

Every flag or argument that names a node (``--cluster``, ``--peers``, ``--listen``,
``--join``, ``member add``'s address) and the client library's address list go
through ``parse_address``, so a typo such as ``:95o1`` is refused up front as
``BadAddress`` naming the flag, instead of surfacing later as a socket error.
"""

from __future__ import annotations

from collections.abc import Iterable

from resonetics.errors import BadAddress

#: Highest TCP port number.
PORT_MAX = 65535


def parse_address(address: str, *, what: str) -> tuple[str, int]:
    """``"host:port"`` -> ``("host", port)``, or ``BadAddress`` saying what is wrong."""
    host, sep, port = address.strip().rpartition(":")
    if not sep:
        raise BadAddress(what, address, "no :PORT")
    if not host:
        raise BadAddress(what, address, "no host before the colon")
    if any(ch.isspace() for ch in host):
        raise BadAddress(what, address, "the host contains a space")
    if not port.isascii() or not port.isdigit():
        raise BadAddress(what, address, f"port {port!r} is not a number")
    if not 0 < int(port) <= PORT_MAX:
        raise BadAddress(what, address, f"port {port} is not in 1..{PORT_MAX}")
    return host, int(port)


def parse_address_list(addresses: str | Iterable[str], *, what: str) -> list[str]:
    """A comma-separated string (or a list) of addresses, each checked; at least one."""
    items = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    out = [item.strip() for item in items if item.strip()]
    if not out:
        shown = addresses if isinstance(addresses, str) else ",".join(items)
        raise BadAddress(what, shown, "no address given")
    for address in out:
        parse_address(address, what=what)
    return out


__all__ = ["PORT_MAX", "parse_address", "parse_address_list"]
