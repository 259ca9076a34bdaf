"""Transport security, admission limits and entry signing (the threat model's section 4).

Its names are loaded on first use (``__getattr__``), so a client importing
``security.tls`` does not also load the server's rate limiter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resonetics.lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "ConnectionLimiter",
    "TLSConfig",
    "TLSConfigError",
    "TokenBucket",
    "client_context",
    "parse_rate",
    "server_context",
]
