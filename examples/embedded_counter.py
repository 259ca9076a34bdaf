"""A blocking program that embeds a cluster member: the replicated counter, in-process.

    PYTHONPATH=examples python examples/embedded_counter.py --id n1 \\
        --peers n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103 \\
        --clients n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data-dir data

Start one per member. The node runs on a background thread (``Node.start()``);
the program then reads commands on stdin, one per line, and answers one line each:

    incr N    N increments through the leader   -> "done ACKED UNKNOWN"
    value     the linearizable value            -> "value V"
    local     this replica's (stale) value      -> "local V APPLIED_INDEX"
    leader    who leads, as this node knows     -> "leader ID|-"
    quit      stop the node and exit            -> "bye"

(tests/test_node_processes.py drives three of these and kill -9s the leader.)
"""

from __future__ import annotations

import argparse
import sys

from counter import Counter

from resonetics import Node, errors


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(","))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--id", required=True)
    parser.add_argument("--peers", required=True, help="ID=HOST:PORT,... (peer addresses)")
    parser.add_argument("--clients", required=True, help="ID=HOST:PORT,... (client addresses)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--tick-ms", type=int, default=20)
    opts = parser.parse_args()
    node = Node(
        node_id=opts.id,
        machine=Counter(),
        peers=_pairs(opts.peers),
        clients=_pairs(opts.clients),
        data_dir=opts.data_dir,
        tick_ms=opts.tick_ms,
    )
    with node:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "incr":
                acked = unknown = 0
                for _ in range(int(words[1])):
                    try:
                        node.call("incr", by=1)
                        acked += 1
                    except (errors.Timeout, errors.Unavailable):
                        unknown += 1  # may or may not have been applied
                print(f"done {acked} {unknown}", flush=True)
            elif words[0] == "value":
                print(f"value {node.call('value')['value']}", flush=True)
            elif words[0] == "local":
                read = node.read_local("value")
                print(f"local {read.value} {read.applied_index}", flush=True)
            elif words[0] == "leader":
                print(f"leader {node.leader or '-'}", flush=True)
            elif words[0] == "quit":
                break
    print("bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
