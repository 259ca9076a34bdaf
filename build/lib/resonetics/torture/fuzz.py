"""``resonetics fuzz``: mutated client and peer lines against a live local cluster.

Theory of operation
-------------------
``run_fuzz(options)`` starts a real ``LocalCluster`` (loopback, free ports,
cluster key, admin token), waits for a leader, then runs, in one asyncio loop:

* client workers: each opens a connection to a random node's client port,
  sometimes first sends an ``Auth`` line (the real admin token or a wrong one),
  sends a run of lines from ``fuzz_lines.LineMaker.client_line`` (every op,
  session fields, ``Auth`` lines, peer kinds on the client port, each mutated),
  waits for as many answers as it sent lines, and closes; a connection the
  node closes first is counted (an oversize line must be; any other is kept
  as a sample in ``DIR/closes/``). Every answer must be a ``ClientResponse``
  whose ``code`` is in ``wire/codes.py`` ``ALL``; any other is counted and
  sampled.
* peer workers, one mode per connection to a node's peer port: ``stranger_raw``
  (no handshake: peer lines straight away), ``stranger_hello`` (a mutated
  ``Hello`` with a wrong proof), ``member`` and ``non_member`` (authenticated
  with the real cluster key as a member, or as ``fz9``, then a run of mutated
  Raft messages; a deliverable one is made stale, see ``fuzz_lines``).
* a monitor: every ``sample_s`` each node's process (exited?), its RSS
  (``/proc/<pid>/status`` VmRSS) and its ``status`` (term, ``handler_errors``,
  ``peer_auth``).

Line counts and the time limit bound the run. Afterwards a well-behaved
``Client`` must put and get a key, the cluster is stopped, and
``storage.verify.verify_path`` checks the data dir. Each worker has its own
``random.Random`` seeded from the run's seed and its number, so one seed gives
the same lines (their interleaving over time is the scheduler's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import msgspec

from resonetics import limits
from resonetics.client import Client
from resonetics.errors import ResoneticsError
from resonetics.localcluster import LocalCluster
from resonetics.security.cluster_key import load_cluster_key
from resonetics.security.peer_auth import PeerCredentials, answer_challenge
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import verify_path
from resonetics.torture.fuzz_lines import LineMaker
from resonetics.wire import codes
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.peer import CHALLENGE_KIND, REFUSED_KIND, WELCOME_KIND, PeerChallenge

#: Share of client connections that never send a valid request first (strangers), and the
#: lines each carries: within the node's burst for such connections (100 lines).
STRANGER_SHARE = 0.15
STRANGER_RUN_LINES = 80
#: Lines one client connection carries before the fuzzer reconnects (drawn uniformly).
CLIENT_RUN_LINES: Final = (20, 400)
#: Raft lines one authenticated peer link carries.
PEER_RUN_LINES: Final = (20, 300)
#: How long a connection waits for the answers to its lines, seconds.
ANSWER_WAIT_S: Final = 10.0
#: Samples kept of unexpected answers and of connections closed on the fuzzer.
SAMPLES_MAX: Final = 20
#: The name of a node that is in no configuration but holds the key.
NON_MEMBER: Final = "fz9"
SUMMARY_FILE: Final = "fuzz-summary.json"
#: The local cluster's data dir inside ``--out``.
CLUSTER_DIR: Final = "cluster"
_KNOWN_PEER_ANSWERS: Final = frozenset({CHALLENGE_KIND, REFUSED_KIND, WELCOME_KIND})
_PEER_MODES: Final = ("stranger_raw", "stranger_hello", "member", "non_member")
_PEER_MODE_WEIGHTS: Final = (0.3, 0.3, 0.25, 0.15)


@dataclass(frozen=True)
class FuzzOptions:
    out: Path
    seed: int = 0
    nodes: int = 3
    client_lines: int = 20_000
    peer_lines: int = 5_000
    time_limit_s: float | None = None
    client_workers: int = 6
    peer_workers: int = 3
    sample_s: float = 1.0
    #: Called with the result so far every ``progress_s`` seconds (None: never).
    on_progress: Callable[[FuzzResult], None] | None = None
    progress_s: float = 10.0


@dataclass
class FuzzResult:
    """Everything measured; ``passed`` is the verdict (``resonetics fuzz`` exit code)."""

    seed: int
    client_lines: int = 0
    peer_lines: int = 0
    bytes_sent: int = 0
    duration_s: float = 0.0
    client_connections: int = 0
    peer_connections: int = 0
    mutations: Counter[str] = field(default_factory=Counter)
    peer_modes: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    unexpected_answers: int = 0
    unexpected_samples: list[str] = field(default_factory=list)
    #: Lines of a connection the node did not close that got no answer in ANSWER_WAIT_S.
    unanswered_lines: int = 0
    #: Lines of a connection closed for an oversize line that got no answer.
    lines_after_oversize: int = 0
    closed_by_node: int = 0
    closed_after_oversize: int = 0
    #: Connections the node closed after their ``limits.AUTH_FAILURES_PER_CONNECTION_MAX``-th
    #: failed ``Auth`` line (its last answer says so), and their lines left unanswered.
    closed_after_auth_failures: int = 0
    lines_after_auth_failures: int = 0
    close_samples: list[str] = field(default_factory=list)
    connect_failures: int = 0
    node_exits: dict[str, int | None] = field(default_factory=dict)
    rss_max_kb: dict[str, int] = field(default_factory=dict)
    term_start: int = 0
    term_end: int = 0
    handler_errors: dict[str, int] = field(default_factory=dict)
    peer_auth: dict[str, Any] = field(default_factory=dict)
    #: Client connections each node closed, by reason (its ``status`` → ``clients``).
    client_closes: dict[str, dict[str, int]] = field(default_factory=dict)
    final_client: str = "not tried"
    verify_ok: bool = False
    verify_problems: list[str] = field(default_factory=list)

    @property
    def elections(self) -> int:
        """Term changes seen during the run (each is at least one election)."""
        return self.term_end - self.term_start

    @property
    def lines_per_s(self) -> float:
        return (self.client_lines + self.peer_lines) / self.duration_s if self.duration_s else 0.0

    @property
    def passed(self) -> bool:
        return (
            not any(code is not None for code in self.node_exits.values())
            and sum(self.handler_errors.values()) == 0
            and self.verify_ok
            and self.final_client == "ok"
            and self.unexpected_answers == 0
            and self.unanswered_lines == 0
            and self.closed_by_node == self.closed_after_oversize + self.closed_after_auth_failures
        )

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs.
        doc = {
            f.name: dict(v) if isinstance(v := getattr(self, f.name), Counter) else v
            for f in fields(self)
        }
        doc.update(
            elections=self.elections,
            lines_per_s=round(self.lines_per_s, 1),
            passed=self.passed,
            duration_s=round(self.duration_s, 2),
        )
        return doc


class _Budget:
    """Lines left to send, and the deadline; workers take runs from it."""

    def __init__(self, lines: int, deadline: float) -> None:
        self.left = lines
        self.deadline = deadline

    def take(self, want: int) -> int:
        if time.monotonic() >= self.deadline:
            return 0
        got = min(want, self.left)
        self.left -= got
        return got


#: What the answer to the last failed ``Auth`` line a connection may send ends with.
_AUTH_LIMIT_ANSWER: Final = b"failed Auth lines: closing"


class _Connection:
    """One fuzzing connection: writes lines, counts what comes back, notices a close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        #: The longest line the node takes on this connection: 64 KiB until a valid request
        #: was answered (``server/admission.py``), ``LINE_BYTES_MAX`` after.
        self.line_cap = limits.LINE_BYTES_MAX
        self.lines: list[bytes] = []
        self.closed_by_node = False
        self.closing = False
        self.recent: deque[bytes] = deque(maxlen=3)
        #: A line past ``limits.LINE_BYTES_MAX`` was sent: the node must close.
        self.sent_oversize = False

    @classmethod
    async def open(cls, address: str) -> _Connection:
        host, _, port = address.rpartition(":")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port), limit=limits.LINE_BYTES_MAX + 1024), 10
        )
        return cls(reader, writer)

    async def read_all(self) -> None:
        """Read answers until the connection ends; ``closed_by_node`` unless we closed it."""
        try:
            while True:
                self.lines.append(await self.reader.readuntil(b"\n"))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.LimitOverrunError):
            self.closed_by_node = not self.closing

    @property
    def closed_for_auth_failures(self) -> bool:
        """The node's last answer said it closes after too many failed ``Auth`` lines."""
        return bool(self.lines) and _AUTH_LIMIT_ANSWER in self.lines[-1]

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False once the node has closed the connection."""
        if self.writer.is_closing() or self.closed_by_node:
            return False
        self.recent.append(data[:2000])
        self.sent_oversize |= len(data) > self.line_cap
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > 1 << 16:
            try:
                await asyncio.wait_for(self.writer.drain(), ANSWER_WAIT_S)
            except (ConnectionError, OSError, TimeoutError):
                return False
        return True

    async def close(self) -> None:
        self.closing = True
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


class Fuzzer:
    """One fuzz run against a started cluster (``run_fuzz`` starts and stops it)."""

    def __init__(self, options: FuzzOptions, cluster: LocalCluster) -> None:
        self.options = options
        self.cluster = cluster
        self.result = FuzzResult(seed=options.seed)
        deadline = time.monotonic() + (options.time_limit_s or float("inf"))
        self.client_budget = _Budget(options.client_lines, deadline)
        self.peer_budget = _Budget(options.peer_lines, deadline)
        self.key = load_cluster_key(cluster.cluster_key_path)
        self.token = cluster.admin_token
        self.ids = list(cluster.nodes)
        self._closes_dir = options.out / "closes"

    # --- the run ----------------------------------------------------------------------
    async def run(self) -> FuzzResult:
        started = time.monotonic()
        first = await self._sample()
        self.result.term_start = max(first, default=0)
        stop = asyncio.Event()
        monitor = asyncio.create_task(self._monitor(stop))
        workers = [self._client_worker(i) for i in range(self.options.client_workers)]
        workers += [self._peer_worker(i) for i in range(self.options.peer_workers)]
        await asyncio.gather(*workers)
        stop.set()
        await monitor
        self.result.duration_s = time.monotonic() - started
        await self._sample()
        return self.result

    async def _monitor(self, stop: asyncio.Event) -> None:
        started = last_report = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.sample_s)
            await self._sample()
            now = time.monotonic()
            if self.options.on_progress and now - last_report >= self.options.progress_s:
                last_report = now
                self.result.duration_s = now - started
                self.options.on_progress(self.result)

    async def _sample(self) -> list[int]:
        """Exits, RSS, term and counters of every node; the terms seen."""
        terms = []
        for node_id, node in self.cluster.nodes.items():
            proc = node.process
            if proc is not None and proc.poll() is not None:
                self.result.node_exits[node_id] = proc.returncode
                continue
            self.result.node_exits.setdefault(node_id, None)
            if proc is not None:
                rss = _rss_kb(proc.pid)
                self.result.rss_max_kb[node_id] = max(rss, self.result.rss_max_kb.get(node_id, 0))
            status = await _status(node.address)
            if status is None:
                continue
            terms.append(int(status.get("term", 0)))
            self.result.term_end = max(self.result.term_end, terms[-1])
            self.result.handler_errors[node_id] = int(status.get("handler_errors", 0))
            self.result.peer_auth[node_id] = status.get("peer_auth", {})
            clients = status.get("clients", {})
            self.result.client_closes[node_id] = dict(clients.get("closed_by_node", {}))
        return terms

    # --- clients ----------------------------------------------------------------------
    async def _client_worker(self, number: int) -> None:
        rng = random.Random(f"{self.options.seed}:client:{number}")
        maker = LineMaker(
            rng,
            nodes=self.ids,
            token=self.token,
            cluster_id=self.key.cluster_id,
            client_id=f"fz{number}",
        )
        while True:
            stranger = rng.random() < STRANGER_SHARE
            want = STRANGER_RUN_LINES if stranger else rng.randint(*CLIENT_RUN_LINES)
            count = self.client_budget.take(want)
            if not count:
                break
            address = self.cluster.nodes[rng.choice(self.ids)].address
            # Most connections behave first (one valid request) and then turn hostile:
            # what a compromised or buggy client does. The others are strangers: the node
            # lets them send only a few short lines a second before a valid request
            # (server/admission.py), so they get short runs of short lines.
            if stranger:
                count = min(count, STRANGER_RUN_LINES)
            lines = [maker.client_line() for _ in range(count)]
            auth = rng.random()
            first: list[bytes] = [] if stranger else [_STATUS_LINE]
            if auth < 0.2 and self.token:
                first.append(_auth_line(self.token))
            elif auth < 0.25:
                first.append(_auth_line("fz-wrong-token"))
            for line in lines:
                self.result.mutations[line.mutation] += 1
            # An oversize line ends its connection (the node closes it), so the lines after
            # it go on a new one instead of being lost unread.
            cap = limits.UNESTABLISHED_LINE_BYTES_MAX if stranger else limits.LINE_BYTES_MAX
            run, auth_lines = list(first), len(first)
            # The next connection behaves first too: without its own valid request it would
            # be held to the smaller line bound of a connection not yet served.
            opener = [] if stranger else [_STATUS_LINE]
            for line in lines:
                run.append(line.data)
                if len(line.data) > cap:
                    await self._client_run(address, run, len(run) - auth_lines, cap)
                    run, auth_lines = list(opener), len(opener)
            if run:
                await self._client_run(address, run, len(run) - auth_lines, cap)

    async def _client_run(self, address: str, lines: list[bytes], count: int, cap: int) -> None:
        """Send ``lines`` (``count`` fuzz lines, maybe after an ``Auth``) on one connection."""
        try:
            conn = await _Connection.open(address)
        except (OSError, TimeoutError):
            self.result.connect_failures += 1
            return
        conn.line_cap = cap
        self.result.client_connections += 1
        reading = asyncio.create_task(conn.read_all())
        expected = 0
        for data in lines:
            if len(data) > cap:
                # The node closes on this line: let the answers in flight arrive first.
                await _answers(conn, reading, expected)
            if not await conn.send(data):
                break
            expected += _answerable_lines(data)
            self.result.bytes_sent += len(data)
        self.result.client_lines += count
        await _answers(conn, reading, expected)
        if conn.sent_oversize:  # the node closes after its TOO_LARGE answer: see it do so
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), ANSWER_WAIT_S)
        missing = max(0, expected - len(conn.lines))
        if conn.sent_oversize:
            self.result.lines_after_oversize += missing
        elif conn.closed_for_auth_failures:
            self.result.lines_after_auth_failures += missing
        else:
            self.result.unanswered_lines += missing
        await conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reading, 2)
        for answer in conn.lines:
            self._check_client_answer(answer)
        if conn.closed_by_node:
            self._count_close(conn)

    def _check_client_answer(self, line: bytes) -> None:
        code = _client_code(line)
        if code is None:
            self.result.unexpected_answers += 1
            if len(self.result.unexpected_samples) < SAMPLES_MAX:
                self.result.unexpected_samples.append(line[:500].decode("utf-8", "replace"))
        else:
            self.result.answers[code] += 1

    def _count_close(self, conn: _Connection) -> None:
        self.result.closed_by_node += 1
        if conn.sent_oversize:
            self.result.closed_after_oversize += 1
            return
        if conn.closed_for_auth_failures:
            self.result.closed_after_auth_failures += 1
            return
        if len(self.result.close_samples) < SAMPLES_MAX:
            self._closes_dir.mkdir(parents=True, exist_ok=True)
            path = self._closes_dir / f"close-{len(self.result.close_samples)}.bin"
            path.write_bytes(b"".join(conn.recent))
            self.result.close_samples.append(str(path))

    # --- peers ------------------------------------------------------------------------
    async def _peer_worker(self, number: int) -> None:
        rng = random.Random(f"{self.options.seed}:peer:{number}")
        maker = LineMaker(rng, nodes=self.ids, cluster_id=self.key.cluster_id)
        while True:
            mode = rng.choices(_PEER_MODES, _PEER_MODE_WEIGHTS)[0]
            keyed = mode in ("member", "non_member")
            want = rng.randint(*PEER_RUN_LINES) if keyed else rng.randint(1, 3)
            count = self.peer_budget.take(want)
            if not count:
                return
            target = rng.choice(self.ids)
            others = [i for i in self.ids if i != target] or [target]
            src = NON_MEMBER if mode == "non_member" else rng.choice(others)
            if mode == "stranger_hello":
                lines = [maker.mutate(maker.peer_base_hello(src)).data for _ in range(count)]
            else:
                lines = [maker.peer_line(src, target, key_holder=keyed).data for _ in range(count)]
            self.result.peer_modes[mode] += count
            await self._peer_run(mode, target, src, lines)

    async def _peer_run(self, mode: str, target: str, src: str, lines: list[bytes]) -> None:
        try:
            conn = await _Connection.open(self.cluster.nodes[target].peer_address)
        except (OSError, TimeoutError):
            self.result.connect_failures += 1
            return
        self.result.peer_connections += 1
        self.result.peer_lines += len(lines)
        try:
            if mode in ("member", "non_member"):
                if not await self._authenticate(conn, src, target):
                    self._count_close(conn)
                    return
            elif mode == "stranger_hello":
                await asyncio.wait_for(conn.reader.readuntil(b"\n"), ANSWER_WAIT_S)
            reading = asyncio.create_task(conn.read_all())
            for data in lines:
                if not await conn.send(data):
                    break
                self.result.bytes_sent += len(data)
            if mode.startswith("stranger"):
                # The node must refuse and close; wait for it (bounded).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reading), ANSWER_WAIT_S)
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.writer.drain(), ANSWER_WAIT_S)
                await asyncio.sleep(0)
            closed = reading.done() and conn.closed_by_node
            await conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reading, 2)
            for answer in conn.lines:
                self._check_peer_answer(answer)
            if closed and not mode.startswith("stranger"):
                self._count_close(conn)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError):
            await conn.close()

    async def _authenticate(self, conn: _Connection, as_node: str, target: str) -> bool:
        line = await asyncio.wait_for(conn.reader.readuntil(b"\n"), ANSWER_WAIT_S)
        challenge = msgspec.json.decode(decode_envelope(line).payload, type=PeerChallenge)
        creds = PeerCredentials(as_node, self.key.cluster_id, self.key)
        hello = answer_challenge(creds, target, challenge, None, "")
        conn.writer.write(_envelope_line("Hello", msgspec.to_builtins(hello)))
        welcome = await asyncio.wait_for(conn.reader.readuntil(b"\n"), ANSWER_WAIT_S)
        return decode_envelope(welcome).kind == WELCOME_KIND

    def _check_peer_answer(self, line: bytes) -> None:
        try:
            kind = decode_envelope(line).kind
        except ResoneticsError:
            kind = ""
        if kind in _KNOWN_PEER_ANSWERS:
            self.result.answers[f"peer:{kind}"] += 1
            return
        self.result.unexpected_answers += 1
        if len(self.result.unexpected_samples) < SAMPLES_MAX:
            self.result.unexpected_samples.append(line[:500].decode("utf-8", "replace"))


def run_fuzz(options: FuzzOptions) -> FuzzResult:
    """Start a cluster in ``options.out/cluster``, fuzz it, check it, stop it, verify it."""
    options.out.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(options.out / CLUSTER_DIR, size=options.nodes)
    try:
        cluster.start()
        cluster.wait_for_leader(timeout_s=60)
        result = asyncio.run(Fuzzer(options, cluster).run())
        result.final_client = _well_behaved_client(cluster, options.seed)
        for node_id in cluster.nodes:
            status = cluster.status(node_id, timeout_s=5)
            if status is not None:
                result.handler_errors[node_id] = int(status.get("handler_errors", 0))
                result.peer_auth[node_id] = status.get("peer_auth", {})
        for node_id, code in cluster.exit_codes().items():
            if code is not None:
                result.node_exits[node_id] = code
    finally:
        cluster.stop()
    report = verify_path(OsFileSystem(), str(cluster.data_dir))
    result.verify_ok = report.ok
    result.verify_problems = list(report.problems) + [
        f"{n.name}: {p}" for n in report.nodes for p in n.problems
    ]
    (options.out / SUMMARY_FILE).write_text(json.dumps(result.to_json(), indent=2, default=str))
    return result


def _well_behaved_client(cluster: LocalCluster, seed: int) -> str:
    """ "ok" when an ordinary client can write a key and read it back; else what failed."""
    try:
        with Client(cluster.addresses, timeout=30) as client:
            client.put("fz-final/check", {"seed": seed})
            got = client.get("fz-final/check")
    except (ResoneticsError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok" if got == {"seed": seed} else f"read back {got!r}"


async def _answers(conn: _Connection, reading: asyncio.Task[None], expected: int) -> None:
    """Wait (at most ANSWER_WAIT_S) until ``conn`` has ``expected`` answers or has ended."""
    deadline = time.monotonic() + ANSWER_WAIT_S
    while len(conn.lines) < expected and not reading.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def _client_code(line: bytes) -> str | None:
    """The code of a ``ClientResponse`` with a known code, else None."""
    try:
        env = decode_envelope(line)
        payload = msgspec.json.decode(env.payload)
    except (ResoneticsError, msgspec.DecodeError):
        return None
    if env.kind != "ClientResponse" or not isinstance(payload, dict):
        return None
    code = payload.get("code")
    return code if isinstance(code, str) and code in codes.ALL else None


def _envelope_line(kind: str, payload: Any) -> bytes:
    doc = {"kind": kind, "payload": payload, "t": 0, "v": 1}
    return json.dumps(doc).encode() + b"\n"


_STATUS_LINE: Final = _envelope_line(
    "ClientRequest",
    {"client_id": "fz-first", "request_id": "fz-first", "op": "status", "args": {}},
)


def _answerable_lines(data: bytes) -> int:
    """Lines the node answers: empty ones (``\r`` aside) are dropped unanswered, so a
    human can type at a node with ``nc`` (``wire/framing.py``)."""
    return sum(1 for part in data.split(b"\n")[:-1] if part.rstrip(b"\r"))


def _auth_line(token: str) -> bytes:
    return _envelope_line("Auth", {"token": token})


async def _status(address: str) -> dict[str, Any] | None:
    """The node's ``status`` result over a raw connection, or None (no answer in time)."""
    request = {"client_id": "fz-monitor", "request_id": "s", "op": "status", "args": {}}
    try:
        conn = await _Connection.open(address)
    except (OSError, TimeoutError):
        return None
    try:
        conn.writer.write(_envelope_line("ClientRequest", request))
        line = await asyncio.wait_for(conn.reader.readuntil(b"\n"), 5)
        result = msgspec.json.decode(decode_envelope(line).payload).get("result")
        return result if isinstance(result, dict) else None
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ResoneticsError, AttributeError):
        return None
    except msgspec.DecodeError:
        return None
    finally:
        await conn.close()


def _rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


__all__ = ["CLUSTER_DIR", "SUMMARY_FILE", "FuzzOptions", "FuzzResult", "Fuzzer", "run_fuzz"]
