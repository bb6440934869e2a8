"""CPython's own asyncio test suite, run on asyncio's loop and on the Reactor: whatever passes
on asyncio's loop must pass on ours, but for the differences listed (and justified) below.

The machinery is in `asyncio_conformance.py` (run it as a script for the full table); this
module only states the rule. One run takes several minutes on two cores.
"""

from __future__ import annotations

import fnmatch
import os
import sys

import pytest
from asyncio_conformance import available_modules, regressions_of, run_all, summarize

if not available_modules():
    pytest.skip("this Python's own tests (test.test_asyncio) are not installed; on Debian they are "
                "the libpython3.X-testsuite and pypy3-lib-testsuite packages", allow_module_level=True)

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

if sys.version_info[:2] == (3, 12):
    # 3.12's asyncio.Server counts its connections with _attach()/_detach() taking no argument;
    # 3.13's take the transport, as the Reactor's Server does (it keeps the transports, to close them).
    KNOWN_DIFFERENCES["test_server.TestServer2.test_wait_closed_*"] = (
        "calls asyncio.Server._attach()/_detach() with no argument, private methods of asyncio's Server "
        "whose signature 3.13 changed to take the transport")

# Races that the Reactor loses now and then where it watches children with a thread (no
# os.pidfd_open, as on PyPy): they may differ, so they are not held to still differing.
RACY_WITHOUT_PIDFD = {
    "test_subprocess.SubprocessFastWatcherTests.test_*":
        "asyncio's FastChildWatcher reaps every child (waitpid(-1) on SIGCHLD); the Reactor's watcher "
        "thread waits without reaping (waitid WNOWAIT) and then reaps, and when the SIGCHLD handler "
        "reaps in between, the exit status is lost (255, as asyncio reports for a child reaped elsewhere)",
}


def known_difference(test_id: str) -> str | None:
    """Why `test_id` may differ on the Reactor, or None when it must not."""
    racy = {} if hasattr(os, "pidfd_open") else RACY_WITHOUT_PIDFD
    for pattern, reason in {**KNOWN_DIFFERENCES, **racy}.items():
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
    # 3.11's suite: 1068 of 2068 tests make a real loop. 3.9's runs more of them on
    # test_utils.TestLoop and lacks test_timeouts/test_taskgroups/test_ssl, and PyPy (no _asyncio)
    # skips test_tasks' C-Task half: 599 of 1919 on PyPy 3.9.
    assert totals["on_loop"] > (900 if sys.version_info >= (3, 11) else 500)
    loops = {record["loops"] for record in results["reactor"].values()}
    assert loops != {0}


@pytest.mark.timeout(900)
def test_known_differences_are_still_different(results) -> None:
    # An entry that no longer differs (fixed, or renamed upstream) must leave the list. The list
    # is written against 3.11's suite: older suites lack some of its tests (3.9's has no
    # test_create_subprocess_fails_with_inactive_watcher), whose entries do not apply there.
    regressions = regressions_of(results)
    ran = set(results["asyncio"])
    stale = [pattern for pattern in KNOWN_DIFFERENCES
             if not any(fnmatch.fnmatchcase(test_id, pattern) for test_id in regressions)
             and (sys.version_info >= (3, 11) or any(fnmatch.fnmatchcase(test_id, pattern) for test_id in ran))]
    assert not stale
