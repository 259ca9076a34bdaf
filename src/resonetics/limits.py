"""Every limit in Resonetics, named with its unit, in one place (STYLE habit 8)."""

from __future__ import annotations

# --- Raft core -----------------------------------------------------------------
#: AppendEntries messages in flight to one follower in replicate mode.
INFLIGHT_APPENDS_MAX = 64
#: Entries in one AppendEntries message.
APPEND_ENTRIES_MAX = 512
#: Encoded entry bytes in one AppendEntries message (approximate, by data size).
APPEND_BYTES_MAX = 1 << 20
#: Uncommitted entries a leader holds before it refuses proposals (back-pressure).
UNCOMMITTED_ENTRIES_MAX = 50_000

# --- Wire ----------------------------------------------------------------------
#: Longest accepted line on any connection (peer or client), bytes.
LINE_BYTES_MAX = 4 << 20
#: Longest key, bytes of UTF-8.
KEY_BYTES_MAX = 1024
#: Largest encoded value, bytes of JSON.
VALUE_BYTES_MAX = 256 * 1024
#: Longest client_id / request_id, characters.
CLIENT_ID_CHARS_MAX = 128
REQUEST_ID_CHARS_MAX = 128
#: Most items one kv_scan returns.
SCAN_LIMIT_MAX = 10_000
#: Longest bearer token a client may present in an ``Auth`` line, characters.
TOKEN_CHARS_MAX = 256

# --- Authorization -------------------------------------------------------------
#: Largest policy file a node or ``resonetics auth`` reads, bytes.
POLICY_BYTES_MAX = 1 << 20
#: Longest identity or role name in a policy, characters.
POLICY_NAME_CHARS_MAX = 64
#: Most key prefixes one role may list for ``read`` or for ``write``.
ROLE_PREFIXES_MAX = 1024
#: Identities whose grants a node keeps computed (the cache is emptied when full).
AUTHZ_GRANTS_CACHED_MAX = 4096

# --- Sessions ------------------------------------------------------------------
#: Remembered results per client (oldest evicted first).
SESSION_RESULTS_PER_CLIENT_MAX = 1024
#: Clients remembered at once (least recently seen evicted first).
SESSION_CLIENTS_MAX = 100_000
#: A session unused for this long, in leader-stamped log time, expires (milliseconds).
SESSION_EXPIRY_MS = 24 * 3600 * 1000

# --- Snapshots -------------------------------------------------------------------
#: Bytes of snapshot per InstallSnapshot chunk (before base64).
SNAPSHOT_CHUNK_BYTES = 256 * 1024
#: Default number of log entries since the last snapshot that triggers a new one.
SNAPSHOT_ENTRIES_DEFAULT = 10_000
#: InstallSnapshot chunks unanswered at once per follower (flow control: heartbeats
#: and appends to other followers are never queued behind a whole snapshot).
SNAPSHOT_CHUNKS_INFLIGHT_MAX = 4
#: Entries kept in memory behind a snapshot's index, so that a follower lagging by
#: fewer entries catches up through AppendEntries rather than a whole snapshot.
SNAPSHOT_TRAILING_ENTRIES = 1_000

# --- Checking --------------------------------------------------------------------
#: Search steps the linearizability checker spends on one key before answering "unknown".
LINEARIZABILITY_STEPS_MAX = 2_000_000
#: Linearizability checks the counterexample minimizer runs on one key, at most.
MINIMIZE_CHECKS_MAX = 400
#: Search steps each of the minimizer's checks may spend (beyond it, keep the operation).
MINIMIZE_STEPS_PER_CHECK = 200_000
#: Search steps all of the minimizer's checks on one key may spend together.
MINIMIZE_STEPS_MAX = 4_000_000

# --- Connections and request rate ---------------------------------------------------
#: Connections a node serves at once; further ones are closed on accept.
CONNECTIONS_MAX = 1024
#: Connections a node serves at once from one source IP address.
CONNECTIONS_PER_IP_MAX = 512
#: Client requests per second one connection may send on average (0: no limit).
RATE_LIMIT_RPS_DEFAULT = 5_000.0
#: Client requests one connection may send in a burst above that rate.
RATE_LIMIT_BURST_DEFAULT = 10_000
#: Seconds a TLS handshake may take before the connection is dropped (slow-handshake guard).
TLS_HANDSHAKE_TIMEOUT_S = 10.0

# --- Membership changes ---------------------------------------------------------------
#: Entries a learner may lag the leader's last index and still be promoted to voter.
PROMOTE_LAG_ENTRIES_MAX = 64
