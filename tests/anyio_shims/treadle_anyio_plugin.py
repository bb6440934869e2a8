"""pytest plugin for anyio's own test suite, loaded by tests/anyio_conformance.py (`-p treadle_anyio_plugin`).

Three jobs:

* keep only the tests parametrised on the `asyncio+uvloop` backend: with one of the `uvloop`
  stand-ins in this folder first on sys.path, those are the tests that run on the loop under
  test (the Reactor, or asyncio's own loop for the baseline); the rest of the suite never
  meets that loop;
* give the Reactor's child-process spawn the allowance anyio's blocking-call detector
  (blockbuster) gives asyncio's: `subprocess.Popen` blocks in `os.read` on its error pipe until
  the child has exec'd, inside `asyncio/base_events.py:subprocess_exec` on asyncio's loop and
  inside `reactor/subprocess.py:_spawn` on ours (docs/reactor-conformance.md);
* write every test's outcome, one JSON line each, to `--treadle-results`.
"""

from __future__ import annotations

import json

import pytest

PARAMETER = "asyncio+uvloop"
# Where the Reactor calls subprocess.Popen: the same wait for exec asyncio's loop does.
SPAWN_ALLOWANCE = ("reactor/subprocess.py", {"_spawn"})


def pytest_addoption(parser) -> None:
    parser.addoption("--treadle-results", help="write one JSON line per test here")


def pytest_collection_modifyitems(config, items) -> None:
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        ids = callspec.id.split("-") if callspec is not None else []
        (keep if PARAMETER in ids else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config) -> None:
    try:
        import blockbuster
    except ImportError:
        return
    original = blockbuster.BlockBuster.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self.functions["os.read"].can_block_in(*SPAWN_ALLOWANCE)

    blockbuster.BlockBuster.__init__ = init


# node id -> "passed", "failed", "error", "skipped", "xfailed" or "xpassed"
OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report) -> None:
    outcomes = OUTCOMES
    previous = outcomes.get(report.nodeid, "passed")
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
    elif report.failed:
        outcome = "error"
    elif report.skipped:
        outcome = "skipped"
    else:
        return
    # The worst outcome of setup, call and teardown wins (an error in teardown spoils a pass).
    if previous in ("error", "failed"):
        return
    outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session) -> None:
    path = session.config.getoption("--treadle-results")
    if not path:
        return
    with open(path, "w") as out:
        for nodeid, outcome in OUTCOMES.items():
            out.write(json.dumps({"id": nodeid, "outcome": outcome}) + "\n")
