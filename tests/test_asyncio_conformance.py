"""CPython's own asyncio test suite, run on asyncio's loop and on the Reactor: whatever passes
on asyncio's loop must pass on ours, but for the differences listed (and justified) below.

The machinery is in `asyncio_conformance.py` (run it as a script for the full table); this
module only states the rule. One run takes several minutes on two cores.
"""

from __future__ import annotations

import fnmatch

import pytest
from asyncio_conformance import regressions_of, run_all, summarize

# Tests that pass on asyncio's loop and cannot pass on the Reactor, each with why. Every entry
# reaches into asyncio's implementation (private attributes, mocks of asyncio's modules, its
# child-watcher machinery) rather than the event-loop API; none is a bug to fix.
KNOWN_DIFFERENCES = {
    "test_events.LoopTests_*.test_create_server_multiple_hosts_ipv*":
        "mocks asyncio.base_events.socket, which the Reactor does not import",
    "test_events.LoopTests_*.test_internal_fds":
        "skips itself unless the loop is a BaseSelectorEventLoop (it counts _internal_fds)",
    "test_events.LoopTests_*.test_prompt_cancellation":
        "calls BaseSelectorEventLoop._stop_serving(), a private asyncio method",
    "test_server.SelectorStartServerTests.test_start_*server_1":
        "asserts on asyncio.Server._waiters, a private attribute of asyncio's Server class",
    "test_subprocess.GenericWatcherTests.test_create_subprocess_fails_with_inactive_watcher":
        "installs an inactive mock as the policy's child watcher; the Reactor watches its children itself "
        "(pidfd or a thread, reactor/childwatch.py) and never consults asyncio's watchers",
    "test_unix_events.SelectorEventLoopSignalTests.test_*":
        "mocks asyncio.unix_events.signal (and .sys) and inspects _UnixSelectorEventLoop's private state",
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_*":
        "drives BaseSelectorEventLoop._sock_sendfile_native(_impl), private asyncio methods",
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_bind_error":
        "mocks asyncio.unix_events.socket, which the Reactor does not import",
}


def known_difference(test_id: str) -> str | None:
    """Why `test_id` may differ on the Reactor, or None when it must not."""
    for pattern, reason in KNOWN_DIFFERENCES.items():
        if fnmatch.fnmatchcase(test_id, pattern):
            return reason
    return None


@pytest.fixture(scope="module")
def results() -> dict:
    return run_all()


@pytest.mark.timeout(900)
def test_what_passes_on_asyncio_passes_on_the_reactor(results) -> None:
    unexpected = [test_id for test_id in regressions_of(results) if known_difference(test_id) is None]
    report = []
    for test_id in unexpected:
        record = results["reactor"].get(test_id, {"outcome": "missing", "detail": ""})
        report.append(f"{test_id}: {record['outcome']}\n{record['detail'][-1500:]}")
    assert not unexpected, "\n\n".join(report)


@pytest.mark.timeout(900)
def test_the_suite_really_ran_on_the_reactor(results) -> None:
    # Guards the runner itself: a patch that silently stopped handing out Reactors would make
    # the comparison above pass vacuously.
    totals = {key: sum(row[key] for row in summarize(results).values()) for key in ("run_reactor", "on_loop")}
    assert totals["run_reactor"] > 1500
    assert totals["on_loop"] > 900
    loops = {record["loops"] for record in results["reactor"].values()}
    assert loops != {0}


@pytest.mark.timeout(900)
def test_known_differences_are_still_different(results) -> None:
    # An entry that no longer differs (fixed, or renamed upstream) must leave the list.
    regressions = regressions_of(results)
    stale = [pattern for pattern in KNOWN_DIFFERENCES
             if not any(fnmatch.fnmatchcase(test_id, pattern) for test_id in regressions)]
    assert not stale
