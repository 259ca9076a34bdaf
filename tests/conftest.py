"""Suite-wide: a failed test that ran real nodes reports what those nodes were doing.

Every ``LocalCluster`` that starts a node during a test is remembered; when the
test fails, its report gets one section per cluster with each node's process
state, status (role, term, leader, indexes) and last log lines
(``LocalCluster.describe``). The section is read while fixtures still run, so a
fixture's cluster is described live.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from resonetics.localcluster import LocalCluster

#: Pytest stash key: the clusters that started a node during the current test.
CLUSTERS_SEEN = pytest.StashKey[list[LocalCluster]]()


@pytest.fixture(autouse=True)
def _remember_clusters(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    seen: list[LocalCluster] = []
    request.node.stash[CLUSTERS_SEEN] = seen
    start_node = LocalCluster.start_node

    def remembering(self: LocalCluster, node_id: str) -> None:
        if not any(c is self for c in seen):
            seen.append(self)
        start_node(self, node_id)

    monkeypatch.setattr(LocalCluster, "start_node", remembering)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for i, cluster in enumerate(item.stash.get(CLUSTERS_SEEN, []), start=1):
        try:
            state = cluster.describe()
        except Exception as exc:  # a report must never hide the failure itself
            state = f"(could not describe the cluster: {exc!r})"
        report.sections.append((f"cluster {i} at failure ({cluster.data_dir})", state))
