"""Transport security, admission limits and entry signing (the threat model's section 4)."""

from __future__ import annotations

from resonetics.security.ratelimit import ConnectionLimiter, TokenBucket, parse_rate
from resonetics.security.tls import TLSConfig, TLSConfigError, client_context, server_context

__all__ = [
    "ConnectionLimiter",
    "TLSConfig",
    "TLSConfigError",
    "TokenBucket",
    "client_context",
    "parse_rate",
    "server_context",
]
