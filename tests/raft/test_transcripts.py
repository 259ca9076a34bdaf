"""Transcript tests: a sequence of events and the resulting cluster state, as text.

Each ``tests/raft/testdata/*.txt`` file is a script. Commands:

    nodes n1 n2 n3           start a cluster (optional; default n1 n2 n3), ``key=value`` config
    campaign n1              n1 starts an election now
    propose n1 DATA          n1 proposes DATA (a string)
    isolate n3 / heal        cut n3 off from everyone / restore every link
    restart n2               crash n2 and start it from what it persisted
    tick N                   N rounds of: every node ticks once, then deliver until quiet
    deliver                  deliver until quiet
    status                   compare with the block after it (one line per node, ended by "----")

Lines starting with ``#`` are comments. The expected blocks are the readable part.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.raft.harness import Network

TESTDATA = Path(__file__).parent / "testdata"


def status_lines(net: Network) -> list[str]:
    return [
        f"{i} {n.role} term={n.term} commit={n.commit_index} last={n.last_index} "
        f"applied={net.applied_data(i)}"
        for i, n in sorted(net.nodes.items())
    ]


def run_transcript(text: str) -> None:
    lines = iter(text.splitlines())
    net = Network(seed=1)
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cmd, *args = line.split()
        if cmd == "nodes":
            ids = [a for a in args if "=" not in a]
            cfg = {k: int(v) for k, v in (a.split("=") for a in args if "=" in a)}
            net = Network(ids, seed=1, **cfg)
        elif cmd == "campaign":
            net.nodes[args[0]].campaign()
            net.deliver()
        elif cmd == "propose":
            net.propose(args[0], " ".join(args[1:]))
            net.deliver()
        elif cmd == "isolate":
            net.isolate(args[0])
        elif cmd == "heal":
            net.heal()
        elif cmd == "restart":
            net.restart(args[0])
        elif cmd == "tick":
            net.tick_and_deliver(int(args[0]))
        elif cmd == "deliver":
            net.deliver()
        elif cmd == "status":
            expected = []
            for exp in lines:
                if exp.strip() == "----":
                    break
                expected.append(exp.strip())
            assert status_lines(net) == expected, f"after line {line!r}"
        else:
            raise ValueError(f"unknown transcript command {cmd!r}")


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path) -> None:
    run_transcript(path.read_text())


def test_there_are_transcripts() -> None:
    assert len(list(TESTDATA.glob("*.txt"))) >= 2
