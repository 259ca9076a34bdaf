"""Transport security, admission limits and entry signing (the threat model's section 4).

Its names are loaded on first use (``__getattr__``), so a client importing
``security.tls`` does not also load the server's rate limiter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resonetics.security.ratelimit import ConnectionLimiter, TokenBucket, parse_rate
    from resonetics.security.tls import TLSConfig, TLSConfigError, client_context, server_context

_EXPORTS = {
    "ConnectionLimiter": "resonetics.security.ratelimit",
    "TokenBucket": "resonetics.security.ratelimit",
    "parse_rate": "resonetics.security.ratelimit",
    "TLSConfig": "resonetics.security.tls",
    "TLSConfigError": "resonetics.security.tls",
    "client_context": "resonetics.security.tls",
    "server_context": "resonetics.security.tls",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'resonetics.security' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ConnectionLimiter",
    "TLSConfig",
    "TLSConfigError",
    "TokenBucket",
    "client_context",
    "parse_rate",
    "server_context",
]
