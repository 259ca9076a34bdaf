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
#: Bytes of keys and encoded values one kv_scan page carries: a page ends at the first
#: item that reaches it (so it holds at least one, and at most this plus one value), with
#: ``more`` and ``next`` as when ``limit`` ends it. Without it one request for 2,000
#: values of VALUE_BYTES_MAX made a 524 MB answer, 363 ms on the loop and as much memory
#: again per request in flight (10,000 such values: 2.6 GB).
SCAN_BYTES_MAX = 1 << 20
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
#: Accounted bytes of remembered results per client (encoded JSON plus overhead); the
#: oldest results are evicted beyond it.
SESSION_BYTES_PER_CLIENT_MAX = 4 << 20
#: Accounted bytes of the whole session table; least recently used clients go beyond it.
#: The table's encoded size is at most this plus one result (and in any case at most
#: SESSION_CLIENTS_MAX x (SESSION_OVERHEAD_BYTES + SESSION_BYTES_PER_CLIENT_MAX)).
SESSION_TABLE_BYTES_MAX = 256 << 20
#: Bytes accounted per remembered result on top of its encoded JSON and key (digest,
#: framing in the snapshot).
SESSION_RESULT_OVERHEAD_BYTES = 64
#: Bytes accounted per session on top of its results (client id, marks, framing).
SESSION_OVERHEAD_BYTES = 256

# --- Snapshots -------------------------------------------------------------------
#: Bytes of snapshot per InstallSnapshot chunk (before base64).
SNAPSHOT_CHUNK_BYTES = 256 * 1024
#: Default number of log entries since the last snapshot that triggers a new one
#: whatever the byte rule says: a cap on the log a restart replays (recovery time)
#: and on the entries held in memory. The byte rule below usually comes first.
SNAPSHOT_ENTRIES_DEFAULT = 50_000
#: Default ratio rule: a snapshot once the log since the last one holds this many
#: times that snapshot's bytes, so the bytes a snapshot writes stay proportional
#: to the log bytes it replaces (runtime/snapshots.py ``snapshot_due``).
SNAPSHOT_LOG_RATIO_DEFAULT = 1.0
#: Default floor of the ratio rule, in log bytes: a tiny state is not snapshotted
#: after every few writes.
SNAPSHOT_LOG_BYTES_FLOOR_DEFAULT = 4 * 1024 * 1024
#: Committed entries one Ready hands out to apply, at most, and about how many bytes of
#: them: a replay at start (or any long backlog) is applied a slice per loop turn, so
#: the node reads its sockets, acks and votes in between (about 25 ms of applying).
APPLY_ENTRIES_PER_READY_MAX = 4_096
APPLY_BYTES_PER_READY_MAX = 1 << 20
#: Committed entries applied in one go from which the cyclic garbage collector is
#: paused for the batch (a replay at start, a follower catching up; see gc_pause.py).
APPLY_GC_PAUSE_ENTRIES_MIN = 1_024
#: InstallSnapshot chunks unanswered at once per follower (flow control: heartbeats
#: and appends to other followers are never queued behind a whole snapshot).
SNAPSHOT_CHUNKS_INFLIGHT_MAX = 4
#: Log entries kept behind a snapshot's index, in memory and in log.jsonl
#: (``log_retain_entries``), so that a follower lagging by fewer entries catches up
#: through AppendEntries rather than a whole snapshot, even after its leader restarted.
SNAPSHOT_TRAILING_ENTRIES = 1_000
#: How far apart the nodes of a cluster take their snapshots: each node scales its
#: snapshot thresholds by ``1 + stagger * rank / voters`` (rank: its place among the
#: voters' ids, 0 for the first), so 3 nodes snapshot at 1, 1.17 and 1.33 times the
#: threshold instead of all at the same index (runtime/snapshots.py).
SNAPSHOT_STAGGER_DEFAULT = 0.5

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
#: Client requests per second one connection may send on average (0: no limit). The same
#: as the budget its identity (or anonymous address) shares across all its connections:
#: one connection may use its source's whole budget, never more. At 5,000/s it capped a
#: single pipelining client (one AsyncClient) at a third of what the cluster serves, while
#: a source opening ten connections got ten times that: it bounded nobody but one-connection users.
RATE_LIMIT_RPS_DEFAULT = 50_000.0
#: Client requests one connection may send in a burst above that rate.
RATE_LIMIT_BURST_DEFAULT = 100_000
#: Bytes of unfinished lines all client connections together may hold (server/admission.py).
CLIENT_INPUT_BUDGET_BYTES = 64 << 20
#: Longest unfinished line a client connection may hold before its first valid request.
UNESTABLISHED_LINE_BYTES_MAX = 64 << 10
#: Lines per second (and in a burst) a client connection may send before its first valid
#: request; beyond them the node stops reading it until the budget refills.
UNESTABLISHED_LINES_PER_S = 50.0
UNESTABLISHED_LINES_BURST = 100
#: Seconds a client connection has to send its first valid request.
UNESTABLISHED_IDLE_S = 10.0
#: Seconds an unfinished line may stay unfinished (slow-loris guard).
PARTIAL_LINE_S = 10.0
#: Seconds a client connection that has been served may stay silent.
CLIENT_IDLE_S = 600.0
#: Lines handled from one connection before the loop turns to other work (fairness).
LINES_PER_TURN = 256
#: Seconds between two sweeps of the client connections for overdue deadlines.
CLIENT_SWEEP_S = 1.0
#: Lines (valid or not) one client connection may send per second, and in a burst:
#: beyond them the node stops reading that connection until the budget refills.
LINE_RATE_FACTOR = 2
#: Lines per second (and in a burst) an established client connection may send that are
#: not requests (unparseable, a peer message, an unknown kind), and never more than its line
#: rate; beyond them the node stops reading it until the budget refills. A request budget
#: sized for one pipelining client must not also be a budget for junk (server/client_conn.py).
JUNK_LINES_PER_S = 10_000.0
JUNK_LINES_BURST = 20_000
#: Failed ``Auth`` lines (an unknown token, a malformed line) one client connection may
#: send: the last is answered, then the connection is closed. A client with the wrong
#: token learns so at the first; more are guessing (each costs a hash per identity).
AUTH_FAILURES_PER_CONNECTION_MAX = 8
#: Client requests per second (and burst) one named identity may send across all its
#: connections; anonymous clients share one budget per source address (0: no limit).
IDENTITY_RATE_RPS_DEFAULT = 50_000.0
IDENTITY_RATE_BURST_DEFAULT = 100_000
#: Identity (or anonymous address) budgets remembered; the least recently used goes first.
IDENTITY_BUCKETS_MAX = 4096
#: Seconds a TLS handshake may take before the connection is dropped (slow-handshake guard).
TLS_HANDSHAKE_TIMEOUT_S = 10.0

# --- Peer links ----------------------------------------------------------------------
#: Longest node id, characters.
NODE_ID_CHARS_MAX = 128
#: Seconds a peer connection may take to finish its handshake before it is closed.
PEER_HANDSHAKE_TIMEOUT_S = 5.0
#: Longest handshake line, bytes (a peer that has not authenticated gets no more).
PEER_HANDSHAKE_LINE_BYTES_MAX = 4096
#: Characters of a handshake nonce or cluster id, of a proof, of a refusal reason.
PEER_NONCE_CHARS_MAX = 64
PEER_PROOF_CHARS_MAX = 128
PEER_REASON_CHARS_MAX = 512
#: Peer connections a node accepts at once (inbound links from the other members).
PEER_CONNECTIONS_MAX = 64

# --- Membership changes ---------------------------------------------------------------
#: Entries a learner may lag the leader's last index and still be promoted to voter.
PROMOTE_LAG_ENTRIES_MAX = 64

# --- Shape of decoded JSON (wire/shape.py) ------------------------------------------
#: Deepest nesting of arrays/objects inside one client value (``v``, ``expected``),
#: containers: ``[]`` is 1 level, ``[[1]]`` 2. Far below the ~1,000 frames at which
#: encoding, hashing or decoding a value would raise ``RecursionError`` in a node.
JSON_DEPTH_MAX = 32
#: Nesting the envelope, payload and Raft framing add around a client value, levels
#: (a value in a CLIENT_BATCH entry inside an AppendEntries line sits 7 levels deep).
ENVELOPE_DEPTH_OVERHEAD = 16
#: Deepest nesting of a whole line, levels: checked before any line is decoded.
LINE_DEPTH_MAX = JSON_DEPTH_MAX + ENVELOPE_DEPTH_OVERHEAD
#: Items in one array or members in one object inside a client value.
JSON_ITEMS_MAX = 65_536
#: Bytes of UTF-8 in one string inside a value: bounded by the value's own limit
#: (a string cannot be longer than the encoded value that holds it).
JSON_STRING_BYTES_MAX = VALUE_BYTES_MAX
#: Largest encoded ``expected`` of a kv_cas, bytes of JSON (the same as a value).
EXPECTED_BYTES_MAX = VALUE_BYTES_MAX
#: Re-encoding JSON makes it at most this many times longer than the text a client
#: sent: only floats grow (``9e15`` -> ``9000000000000000.0``); strings, ints and
#: literals never do. Used to bound an encoded size from a line's length unencoded.
REENCODE_GROWTH_MAX = 8
#: Bytes ``raft.log.entry_size_bytes`` adds to an entry's data (term, index, hash...).
ENTRY_OVERHEAD_BYTES = 128
#: Bytes an entry adds around one command's request payload (``ts`` and its key).
COMMAND_OVERHEAD_BYTES = 64
#: Largest encoded client command (its request payload re-encoded), bytes: any
#: accepted command fits in one AppendEntries on its own (a value and an
#: ``expected`` at their limits, a key and ids at theirs, stay far below it).
COMMAND_BYTES_MAX = APPEND_BYTES_MAX - ENTRY_OVERHEAD_BYTES - COMMAND_OVERHEAD_BYTES
#: Client commands in one CLIENT_BATCH entry, at most.
BATCH_COMMANDS_MAX = 64
#: Request-payload bytes (as sent, not re-encoded) proposed as one CLIENT_BATCH entry,
#: at most (beyond a lone command): chosen so that even at REENCODE_GROWTH_MAX the
#: batch entry stays within APPEND_BYTES_MAX and so travels in one AppendEntries.
BATCH_PAYLOAD_BYTES_MAX = (
    APPEND_BYTES_MAX - ENTRY_OVERHEAD_BYTES - BATCH_COMMANDS_MAX * COMMAND_OVERHEAD_BYTES
) // REENCODE_GROWTH_MAX

# --- Peer messages (wire/peer.py) ----------------------------------------------------
#: Entries one received AppendEntries may carry (what a leader sends, at most).
PEER_ENTRIES_MAX = APPEND_ENTRIES_MAX
#: Characters of base64 in one InstallSnapshot chunk (SNAPSHOT_CHUNK_BYTES encoded).
SNAPSHOT_CHUNK_CHARS_MAX = 4 * -(-SNAPSHOT_CHUNK_BYTES // 3)
# --- History signatures and incoming snapshots ------------------------------------------
#: Declared size of an incoming InstallSnapshot stream above which it is refused before
#: a byte is spooled (bytes; override per node: ``--snapshot-bytes-max``). The spool
#: never grows past the declared size, so this bounds the disk a stream can fill.
SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024
#: Terms whose entry author a follower remembers for the one-author-per-term check
#: (the oldest are forgotten first; a term is a few bytes).
TRUST_TERMS_REMEMBERED_MAX = 4096
#: How much of a data dir's LOCK file is read to name the process holding it, bytes.
LOCK_HOLDER_BYTES_MAX = 256
# --- Served machines (machine/ops.py, server/machine_record.py) ---------------------------
#: Longest machine name a data dir records (bytes of UTF-8; a class path fits easily).
MACHINE_NAME_BYTES_MAX = 256
# --- Ready-made replicated structures (machine/structures.py) -----------------------------
#: Longest lock TTL or queue visibility timeout a request may ask for (ms of log time).
STRUCTURE_TTL_MS_MAX = 24 * 3600 * 1000
#: Items a structure's listing query (``Dict.items``, ``Set.items``) returns at most.
STRUCTURE_LIST_ITEMS_MAX = 1000
# --- Determinism checker (machine/determinism.py) -------------------------------------------
#: Commands one ``check_determinism`` run applies at most.
DETERMINISM_OPS_MAX = 100_000
# --- Embedded nodes (node.py) -------------------------------------------------------------
#: How long ``Node.start()`` waits for a thread-mode node to serve, and the default
#: deadline of ``Node.wait_ready`` (seconds).
NODE_START_TIMEOUT_S = 60.0
#: How long ``Node.stop()`` waits for a thread-mode node's thread to end, and how long a
#: call handed to the node's loop may wait to run there (seconds).
NODE_STOP_TIMEOUT_S = 30.0
# --- Operator events (server/events.py) -----------------------------------------------------
#: While a peer stays unreachable, at most one "peer_link_down" line per this many seconds.
PEER_LINK_DOWN_LOG_INTERVAL_S = 60.0
#: How often ``torture`` prints a progress line, seconds.
TORTURE_PROGRESS_INTERVAL_S = 5.0

# --- HTTP (server/http_api.py, docs/http.md) ------------------------------------------
#: Largest HTTP request body, bytes (a CAS with ``expected`` and a value at their limits
#: fits; a larger body is answered 413 before it is read whole).
HTTP_BODY_BYTES_MAX = 2 * VALUE_BYTES_MAX + (64 << 10)
#: Longest HTTP request line or header line, bytes (aiohttp answers 400 beyond).
HTTP_HEADER_LINE_BYTES_MAX = 8190
#: Most header lines in one HTTP request.
HTTP_HEADERS_MAX = 64
#: Seconds an idle keep-alive HTTP connection stays open.
HTTP_KEEPALIVE_S = 75.0
#: HTTP connections open at once, and from one source address (server/http_door.py): the
#: newcomer beyond is answered 503 and closed. As the client port's door.
HTTP_CONNECTIONS_MAX = 1024
HTTP_CONNECTIONS_PER_ADDRESS_MAX = 512
#: Seconds a new HTTP connection has to finish the head of its first request.
HTTP_FIRST_HEAD_S = 10.0
#: Seconds shutdown waits for HTTP requests in progress before they are cancelled.
HTTP_SHUTDOWN_GRACE_S = 1.0
#: Seconds ``/health`` waits for the event loop to run a callback before it says 503.
HTTP_HEALTH_LOOP_S = 1.0
#: Seconds a request body may take to arrive whole (slow-body guard); 400 beyond.
HTTP_BODY_READ_S = 10.0
#: Seconds the HTTP port keeps reading (and dropping) an unread request body after its
#: answer, so the answer is not lost to a reset; then it closes the connection.
HTTP_LINGER_S = 1.0
#: Watch streams the HTTP port serves at once (``GET /v1/watch``; a share of WATCHES_MAX,
#: so HTTP streams cannot take every watch from client-port watchers); 429 beyond.
HTTP_WATCHES_MAX = 1024
#: Watch streams from one source address at once (one stream per HTTP connection).
HTTP_WATCHES_PER_ADDRESS_MAX = 64
#: Seconds between an idle HTTP watch stream's checks that its client is still there.
HTTP_WATCH_CHECK_S = 0.5
#: Seconds one write of an HTTP watch stream may wait for a client that reads nothing
#: before its connection is closed (the hub cuts the watch earlier if changes pile up).
HTTP_WATCH_WRITE_STALL_S = 30.0

# --- Backups (server/backup.py, storage/backup_file.py) ------------------------------------
#: Bytes of a backup one ``backup_chunk`` answer carries, at most (before base64): well
#: under LINE_BYTES_MAX once encoded, so a large state travels in many bounded answers.
BACKUP_CHUNK_BYTES = 1 << 20
#: Backups a node holds in memory for download at once; a further ``backup_begin`` is
#: refused (UNAVAILABLE) until one is fetched or expires.
BACKUP_OPEN_MAX = 2
#: A backup nobody asked a chunk of for this long is dropped (seconds).
BACKUP_IDLE_S = 120.0
#: Bytes of a backup file's header line read before giving up on it (a header is ~1 KiB
#: plus the membership).
BACKUP_HEADER_BYTES_MAX = 1 << 20


# --- transactions and scan cursors (kv_txn, kv_scan) -------------------------------
#: Compares in one ``kv_txn``, count.
TXN_COMPARES_MAX = 64
#: Operations in one branch (``then`` or ``else``) of a ``kv_txn``, count.
TXN_OPS_MAX = 128
#: (A txn's total size is bounded by COMMAND_BYTES_MAX like any command's, and each
#: value it carries by VALUE_BYTES_MAX.)
#: Encoded bytes of the values a txn's gets answer, together: a get past it answers
#: ``"omitted": true`` instead of its value (the caller reads it with kv_get), so a
#: txn's result stays far below LINE_BYTES_MAX and the session table's per-client cap.
TXN_READ_BYTES_MAX = 1 << 20
#: Recent deletes a key-value store remembers (key and index) so a consistent
#: multi-page scan can tell whether a key in its range vanished after its first
#: page; older deletes are forgotten and such a scan is refused, count.
SCAN_TOMBSTONES_MAX = 4096

# --- Watch streams (machine/changes.py, server/watch.py) ------------------------------------
#: Changes the watch history keeps (a ring: the oldest entries' changes go first).
WATCH_HISTORY_CHANGES_MAX = 100_000
#: Estimated bytes (keys, values, overhead) the watch history keeps, at most.
WATCH_HISTORY_BYTES_MAX = 64 << 20
#: Bytes a change is charged beyond its key and value (record, tuple, references).
WATCH_CHANGE_OVERHEAD_BYTES = 96
#: Dropped records after which the history's list is compacted (and at least half dead).
WATCH_HISTORY_COMPACT_RECORDS = 4096
#: Watches one client connection may hold at once (more: BAD_REQUEST, nothing opened).
WATCHES_PER_CONNECTION_MAX = 64
#: Watches one node serves at once, over all connections.
WATCHES_MAX = 4096
#: A watcher's backlog (changes after its position, nothing copied) past which a
#: watcher that is not reading its connection is cut with WATCH_TOO_SLOW.
WATCH_QUEUE_CHANGES_MAX = 20_000
#: The same backlog in estimated bytes.
WATCH_QUEUE_BYTES_MAX = 16 << 20
#: Unsent bytes a connection's transport may hold before its watches stop being fed
#: (they wait, their backlog growing, until the client reads).
WATCH_CONN_BUFFER_BYTES_MAX = 1 << 20
#: Bytes of events in one WatchEvents line, about (whole entries: one may go past it).
WATCH_MESSAGE_BYTES = 64 << 10
#: Seconds between progress notices to a watcher (its heartbeat when nothing changes).
WATCH_PROGRESS_INTERVAL_S = 1.0
#: Seconds between retries of watchers blocked on a full connection.
WATCH_RETRY_S = 0.05
#: Seconds a client waits for any message on a watch before it resumes elsewhere
#: (several progress intervals: a stopped node is noticed, a slow one is not abandoned).
WATCH_SILENCE_S = 5.0

# --- Dashboard (server/dashboard.py, docs/http.md#dashboard) -------------------------------
#: Recent operator events each node keeps for ``GET /v1/events`` (the oldest are forgotten).
DASHBOARD_EVENTS_MAX = 512
#: Seconds between two throughput/latency samples of the dashboard.
DASHBOARD_SAMPLE_INTERVAL_S = 1.0
#: Samples kept: 300 one-second samples are the last five minutes.
DASHBOARD_SAMPLES_MAX = 300
#: Write latencies kept per sample for its p50/p99 (a busier second is sampled evenly).
DASHBOARD_LATENCIES_PER_SAMPLE_MAX = 4096
#: Seconds ``GET /v1/cluster`` waits for another member's answer before marking it unreachable.
DASHBOARD_PEER_TIMEOUT_S = 1.0
#: Largest answer ``GET /v1/cluster`` reads from another member's ``/v1/node``, bytes.
DASHBOARD_PEER_REPLY_BYTES_MAX = 1 << 20

# --- leases (machine/leases.py, runtime/leases.py) ------------------------------------
#: Shortest TTL a lease may be granted, ms (shorter would expire between keep-alives).
LEASE_TTL_MS_MIN = 1000
#: Longest TTL a lease may be granted, ms (a day).
LEASE_TTL_MS_MAX = 24 * 3600 * 1000
#: Live leases in a cluster, count (a grant past it is refused with LEASE_LIMIT).
LEASES_MAX = 10_000
#: Keys attached to one lease, count (an attach past it is refused with LEASE_LIMIT).
LEASE_KEYS_MAX = 10_000
#: Keys ``lease_info`` lists (``keys_total`` counts them all), count.
LEASE_INFO_KEYS_MAX = 1000
#: Lease ids one ``lease_list`` answers, count.
LEASE_LIST_MAX = 1000
#: Lease ids in one ``lease_expire`` entry the leader proposes, count.
LEASE_EXPIRE_BATCH_MAX = 256
#: Keys the leases of one ``lease_expire`` entry hold, count: every replica deletes them
#: in one apply, so the leader fills an entry up to this many (a lease that holds more
#: goes alone; ``LEASE_KEYS_MAX`` is no larger) and proposes the next once it is answered.
#: 256 leases of 10,000 keys in one entry took 5.3 s of apply on every node.
LEASE_EXPIRE_KEYS_MAX = 10_000
#: How long the leader waits before proposing the expiry of a lease again when the
#: last proposal did not end it (lost with leadership, or log time still short), ms.
LEASE_EXPIRE_RETRY_MS = 500

# --- the snapshot trigger's operator settings (server/config.py) ---------------------
#: Largest ``snapshot_log_ratio`` accepted (log bytes per byte of the last snapshot). At
#: 100 the ratio rule practically never fires before the entries cap does.
SNAPSHOT_LOG_RATIO_MAX = 100.0
#: Largest ``snapshot_floor_bytes`` (and ``snapshot_bytes``) accepted, bytes: the log
#: since the last snapshot is held in memory and replayed at a restart.
SNAPSHOT_LOG_BYTES_SETTING_MAX = 1 << 30
#: Largest ``snapshot_entries`` accepted, entries (0 switches the cap off), for the same
#: reasons.
SNAPSHOT_ENTRIES_SETTING_MAX = 10_000_000
#: Largest ``log_retain_entries`` accepted: the retained entries live in memory too.
LOG_RETAIN_ENTRIES_SETTING_MAX = 10_000_000

# --- the client library (client.py) ---------------------------------------------------
#: Requests one ``AsyncClient`` connection writes in one go, count: past it the queued
#: requests leave at once rather than at the loop's next turn. With hundreds in flight,
#: answers arrive together and their follow-up requests were written as one block, so
#: the node and the client took turns (one worked while the other waited); smaller
#: blocks let the node start on the first while the client encodes the rest.
CLIENT_WRITE_BATCH_REQUESTS_MAX = 64
