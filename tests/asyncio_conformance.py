"""Run CPython's own asyncio test suite (`test.test_asyncio`) on asyncio's loop or on the Reactor.

Two halves, one file:

* the **child** (`python tests/asyncio_conformance.py child --loop reactor --module test_tasks ...`)
  imports one test module, patches asyncio so that every real event loop a test creates is the
  chosen kind, runs the module with unittest and writes one JSON line per test;
* the **parent** (`run_all()`, or `python tests/asyncio_conformance.py report`) runs a child per
  (module, loop kind), two at a time, restarts a child past a test that hung or crashed it, and
  compares the outcomes.

How a test gets a Reactor. asyncio code reaches a loop through three doors, and the child
patches each for the whole run (asyncio's own loop goes through the same doors in the baseline,
so both runs are instrumented alike):

* `asyncio.new_event_loop()`, `asyncio.run()`, `get_event_loop()`: the policy. A policy built on
  `reactor.EventLoopPolicy` is installed, and `asyncio.DefaultEventLoopPolicy` is replaced too,
  because most modules reset the policy with `set_event_loop_policy(None)` in tearDownModule (and
  some tests in tearDown), which re-creates `DefaultEventLoopPolicy()`.
* `asyncio.SelectorEventLoop(selector)`: test classes per selector (test_sock_lowlevel,
  test_sendfile, test_server...) call it; it becomes `Reactor(<that selector's name>)`.
* `test_events`' `EventLoopTestsMixin`/`SubprocessTestsMixin`: bound here to the loop kind, one
  class per selector backend, like CPython's own `EPollEventLoopTests` (which are left out).

Every loop made through these doors is counted per test, so tests that never touch a real loop
(they use `test_utils.TestLoop`, a BaseEventLoop double, or no loop at all) are counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import faulthandler
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "test.test_asyncio."

# The modules of test.test_asyncio that exercise an event loop through public API. Left out:
# test_base_events, test_selector_events, test_proactor_events (they test asyncio's own
# BaseEventLoop / BaseSelectorEventLoop classes, not "a loop") and the Windows-only modules.
MODULES = (
    "test_events", "test_tasks", "test_locks", "test_queues", "test_timeouts", "test_taskgroups",
    "test_waitfor", "test_streams", "test_runners", "test_futures", "test_futures2", "test_sock_lowlevel",
    "test_server", "test_sendfile", "test_ssl", "test_sslproto", "test_subprocess", "test_context",
    "test_pep492", "test_unix_events", "test_buffered_proto", "test_protocols", "test_threads",
    "test_transports",
)


def available_modules(modules=MODULES) -> tuple[str, ...]:
    """The modules of `modules` this Python's test.test_asyncio has (3.9's lacks test_timeouts,
    test_taskgroups and test_ssl); none when the stdlib tests are not installed (Debian ships
    them apart: libpython3.X-testsuite, pypy3-lib-testsuite)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(PREFIX.rstrip("."))
    except ImportError:
        return ()
    if spec is None or not spec.submodule_search_locations:
        return ()
    package_dir = list(spec.submodule_search_locations)[0]
    return tuple(m for m in modules if os.path.exists(os.path.join(package_dir, m + ".py")))


# A test still running after this long is declared hung; its child is killed and restarted past it.
TEST_DEADLINE = 60.0
PASSED = ("passed", "skipped", "expected-failure")
# Wall-clock seconds per (loop kind, module) of the latest run_module calls, to find slow modules.
SECONDS: dict[tuple[str, str], float] = {}


# ====================================================================== child: one module, one loop


class _LoopCounter:
    """Counts the real loops made through the patched doors while the current test runs."""

    def __init__(self) -> None:
        self.count = 0

    def wrap(self, factory):
        def counted(*args, **kwargs):
            self.count += 1
            return factory(*args, **kwargs)

        return counted


def _patch_asyncio(kind: str, counter: _LoopCounter):
    """Make every door to a real loop hand out `kind` loops; returns the loop factory by selector name."""
    import selectors

    original_selector_loop = asyncio.SelectorEventLoop
    if kind == "reactor":
        sys.path.insert(0, ROOT)
        from treadle import reactor

        def by_name(name=None):
            return reactor.Reactor(name)

        def selector_event_loop(selector=None):
            name = None
            if selector is not None:
                name = type(selector).__name__.replace("Selector", "").lower()
                selector.close()  # the Reactor makes its own selector of the same kind
            return reactor.Reactor(name)

        policy_base = reactor.EventLoopPolicy
    else:
        def by_name(name=None):
            if name is None:
                return original_selector_loop()
            return original_selector_loop(getattr(selectors, name.capitalize() + "Selector")())

        selector_event_loop = original_selector_loop
        policy_base = asyncio.DefaultEventLoopPolicy

    # asyncio's Unix default policy supplies the child-watcher API that test_events and
    # test_subprocess use; the loops come from `kind`.
    unix_policy = asyncio.DefaultEventLoopPolicy
    bases = (policy_base,) if policy_base is unix_policy else (policy_base, unix_policy)
    policy = type("ConformancePolicy", bases, {"_loop_factory": staticmethod(counter.wrap(selector_event_loop))})
    asyncio.DefaultEventLoopPolicy = policy
    asyncio.SelectorEventLoop = counter.wrap(selector_event_loop)
    if hasattr(asyncio, "unix_events"):
        asyncio.unix_events.DefaultEventLoopPolicy = policy
        asyncio.unix_events.SelectorEventLoop = asyncio.SelectorEventLoop
    asyncio.set_event_loop_policy(policy())
    return counter.wrap(by_name)


def _event_loop_test_classes(module, loop_by_name) -> list[type]:
    """test_events' mixins bound to the chosen loop, one class per selector backend."""
    import selectors

    mixins = [getattr(module, "UnixEventLoopTestsMixin", None) or module.EventLoopTestsMixin]
    if hasattr(module, "SubprocessTestsMixin"):
        mixins.append(module.SubprocessTestsMixin)
    from test.test_asyncio import utils as test_utils

    classes = []
    for name in ("epoll", "kqueue", "poll", "select"):
        if not hasattr(selectors, name.capitalize() + "Selector"):
            continue

        def create_event_loop(self, name=name):
            return loop_by_name(name)

        cls = type(f"LoopTests_{name}", (*mixins, test_utils.TestCase), {"create_event_loop": create_event_loop})
        cls.__module__ = module.__name__
        classes.append(cls)
    return classes


def _load(module_name: str, loop_by_name) -> unittest.TestSuite:
    module = importlib.import_module(PREFIX + module_name)
    loader = unittest.TestLoader()
    if module_name != "test_events":
        return loader.loadTestsFromModule(module)
    # CPython's own per-selector classes are replaced by ours; the loop-independent ones stay.
    suite = unittest.TestSuite()
    for name in dir(module):
        obj = getattr(module, name)
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and not issubclass(obj, module.EventLoopTestsMixin)):
            suite.addTests(loader.loadTestsFromTestCase(obj))
    for cls in _event_loop_test_classes(module, loop_by_name):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


def _select(suite, keep) -> unittest.TestSuite:
    selected = unittest.TestSuite()
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            selected.addTests(_select(test, keep))
        elif keep(_short_id(test)):
            selected.addTest(test)
    return selected


def _short_id(test) -> str:
    test_id = test.id()
    return test_id[len(PREFIX):] if test_id.startswith(PREFIX) else test_id


class _JsonLinesResult(unittest.TestResult):
    """Writes each test's outcome as it finishes; a watchdog reports a test that never does."""

    def __init__(self, out, counter: _LoopCounter) -> None:
        super().__init__()
        self._out = out
        self._counter = counter
        self._current = None
        self._outcome = None
        self._detail = ""
        self._deadline = None
        self._lock = threading.Lock()
        threading.Thread(target=self._watchdog, daemon=True).start()

    def _emit(self, **record) -> None:
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def startTest(self, test) -> None:
        super().startTest(test)
        with self._lock:
            self._current = _short_id(test)
            self._deadline = time.monotonic() + TEST_DEADLINE
        self._counter.count = 0
        self._outcome, self._detail = "passed", ""

    def stopTest(self, test) -> None:
        super().stopTest(test)
        with self._lock:
            self._deadline = None
        self._emit(id=_short_id(test), outcome=self._outcome, loops=self._counter.count, detail=self._detail)

    def _fail(self, outcome, test, err) -> None:
        if self._outcome in ("failed", "error"):
            return
        self._outcome = outcome
        self._detail = self._exc_info_to_string(err, test)[-3000:]

    def addError(self, test, err) -> None:
        super().addError(test, err)
        if isinstance(test, unittest.case._SubTest):
            test = test.test_case
        if not isinstance(test, unittest.TestCase):  # setUpClass / setUpModule failure
            self._emit(id=str(test), outcome="error", loops=0, detail=self._exc_info_to_string(err, test)[-3000:])
            return
        self._fail("error", test, err)

    def addFailure(self, test, err) -> None:
        super().addFailure(test, err)
        self._fail("failed", test, err)

    def addSubTest(self, test, subtest, err) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._fail("failed", test, err)

    def addSkip(self, test, reason) -> None:
        super().addSkip(test, reason)
        if isinstance(test, unittest.TestCase) and _short_id(test) == self._current:
            self._outcome, self._detail = "skipped", reason
        else:  # a whole class skipped: unittest never starts its tests
            self._emit(id=_short_id(test), outcome="skipped", loops=0, detail=reason)

    def addExpectedFailure(self, test, err) -> None:
        super().addExpectedFailure(test, err)
        self._outcome = "expected-failure"

    def addUnexpectedSuccess(self, test) -> None:
        super().addUnexpectedSuccess(test)
        self._outcome = "failed"
        self._detail = "unexpected success"

    def _watchdog(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                hung = self._deadline is not None and time.monotonic() > self._deadline
                current = self._current
            if hung:
                self._emit(id=current, outcome="hung", loops=self._counter.count,
                           detail=f"still running after {TEST_DEADLINE:.0f} s")
                faulthandler.dump_traceback(all_threads=True)
                os._exit(3)


def child_main(kind: str, module_name: str, results_path: str, skip_path: str | None, only_path: str | None) -> None:
    counter = _LoopCounter()
    loop_by_name = _patch_asyncio(kind, counter)
    suite = _load(module_name, loop_by_name)
    if skip_path:
        with open(skip_path) as f:
            skip = set(json.load(f))
        suite = _select(suite, lambda test_id: test_id not in skip)
    if only_path:
        with open(only_path) as f:
            only = set(json.load(f))
        suite = _select(suite, lambda test_id: test_id in only)
    with open(results_path, "a") as out:
        result = _JsonLinesResult(out, counter)
        suite.run(result)
        out.write(json.dumps({"done": True}) + "\n")
    # Threads some tests leave behind must not keep the child alive.
    os._exit(0)


# ====================================================================== parent: run and compare


def run_module(kind: str, module_name: str, only: list[str] | None = None, max_restarts: int = 20) -> dict:
    """Run one module in child processes; {test id: record}. Hung or crashing tests are recorded and skipped."""
    records: dict[str, dict] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        results_path = os.path.join(tmp, "results.jsonl")
        skip_path = os.path.join(tmp, "skip.json")
        only_path = os.path.join(tmp, "only.json")
        if only is not None:
            with open(only_path, "w") as f:
                json.dump(only, f)
        for _ in range(max_restarts):
            with open(skip_path, "w") as f:
                json.dump(list(records), f)
            command = [sys.executable, "-X", "faulthandler", os.path.abspath(__file__), "child", "--loop", kind,
                       "--module", module_name, "--results", results_path, "--skip", skip_path]
            if only is not None:
                command += ["--only", only_path]
            proc = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=1800)
            done = False
            if os.path.exists(results_path):
                with open(results_path) as f:
                    for line in f:
                        record = json.loads(line)
                        if record.get("done"):
                            done = True
                        else:
                            records[record["id"]] = record
                os.unlink(results_path)
            if done:
                break
            if proc.returncode != 3:  # not the watchdog: the child died, or never started
                tail = proc.stdout.decode(errors="replace")[-3000:]
                records[f"{module_name} (child exit {proc.returncode})"] = {
                    "id": module_name, "outcome": "crashed", "loops": 0, "detail": tail}
                break
    if only is None:
        SECONDS[(kind, module_name)] = time.monotonic() - started
    return records


def run_all(modules=None, workers: int = 2, rerun_failures: bool = True) -> dict[str, dict[str, dict]]:
    """{kind: {test id: record}} for both loop kinds over `modules` (default: every module of
    MODULES this Python has), `workers` children at a time.

    A test that passed on asyncio's loop and failed on the Reactor is run once more, alone, on
    the Reactor (as CPython's regrtest reruns failures): timing-sensitive tests on a loaded
    two-core machine fail now and then on either loop. Its record keeps "first_outcome".
    """
    if modules is None:
        modules = available_modules()
    results: dict[str, dict[str, dict]] = {"asyncio": {}, "reactor": {}}
    jobs = [(kind, module) for module in modules for kind in ("reactor", "asyncio")]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for (kind, _), records in zip(jobs, pool.map(lambda job: run_module(*job), jobs)):
            results[kind].update(records)
    if rerun_failures:
        regressions = collections.defaultdict(list)
        for test_id in regressions_of(results):
            regressions[test_id.split(".")[0]].append(test_id)
        for module, test_ids in regressions.items():
            for test_id, record in run_module("reactor", module, only=test_ids).items():
                if test_id in results["reactor"]:
                    record["first_outcome"] = results["reactor"][test_id]["outcome"]
                    results["reactor"][test_id] = record
    return results


def regressions_of(results: dict[str, dict[str, dict]]) -> list[str]:
    """Tests whose outcome on the Reactor is worse than on asyncio's loop.

    A test passing on asyncio's loop must pass on the Reactor: skipping itself there (say,
    "loop is not a BaseSelectorEventLoop") counts as a difference too.
    """
    reactor = results["reactor"]
    worse = []
    for test_id, record in results["asyncio"].items():
        ours = reactor.get(test_id, {"outcome": "missing"})["outcome"]
        if record["outcome"] == "skipped":
            if ours not in PASSED:
                worse.append(test_id)
        elif record["outcome"] in PASSED and ours != record["outcome"]:
            worse.append(test_id)
    return sorted(worse)


def summarize(results: dict[str, dict[str, dict]]) -> dict[str, dict[str, int]]:
    """Per module: tests run, passed on each loop, and how many touched a real loop."""
    table: dict[str, dict[str, int]] = collections.defaultdict(collections.Counter)
    for kind in ("asyncio", "reactor"):
        for test_id, record in results[kind].items():
            row = table[test_id.split(".")[0].split(" ")[0]]
            row[f"run_{kind}"] += 1
            if record["outcome"] == "passed":
                row[f"passed_{kind}"] += 1
            elif record["outcome"] == "skipped":
                row[f"skipped_{kind}"] += 1
            if kind == "reactor" and record["loops"]:
                row["on_loop"] += 1
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    child = sub.add_parser("child")
    child.add_argument("--loop", choices=("asyncio", "reactor"), required=True)
    child.add_argument("--module", required=True)
    child.add_argument("--results", required=True)
    child.add_argument("--skip")
    child.add_argument("--only")
    report = sub.add_parser("report", help="run every module on both loops and print the comparison")
    report.add_argument("modules", nargs="*", default=None)
    report.add_argument("--json", help="also write every record here")
    args = parser.parse_args(argv)
    if args.command == "child":
        child_main(args.loop, args.module, args.results, args.skip, args.only)
        return
    started = time.monotonic()
    results = run_all(args.modules or None)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    from test_asyncio_conformance import known_difference  # the list lives with the rule it relaxes

    table = summarize(results)
    regressions = regressions_of(results)
    for test_id in regressions:
        table[test_id.split(".")[0]]["known" if known_difference(test_id) else "unexpected"] += 1
    columns = ("run_reactor", "on_loop", "passed_asyncio", "passed_reactor", "skipped_asyncio", "skipped_reactor",
               "known", "unexpected")
    print("| module | tests | on a real loop | passed: asyncio | passed: Reactor | skipped: asyncio | "
          "skipped: Reactor | known differences | unexpected |")
    print("|---|" + "---:|" * len(columns))
    total = collections.Counter()
    for module in sorted(table):
        total.update(table[module])
        print(f"| {module} | " + " | ".join(str(table[module][c]) for c in columns) + " |")
    print("| **total** | " + " | ".join(f"**{total[c]}**" for c in columns) + " |")
    print()
    for test_id in regressions:
        reason = known_difference(test_id)
        record = results["reactor"].get(test_id, {"outcome": "missing", "detail": ""})
        if reason:
            print(f"known: {test_id}: {reason}")
        else:
            print(f"UNEXPECTED {test_id}: {record['outcome']}\n    " + record["detail"].strip().replace("\n", "\n    "))
    slowest = sorted(SECONDS.items(), key=lambda item: -item[1])[:8]
    print("slowest:", ", ".join(f"{module} on {kind} {seconds:.0f} s" for (kind, module), seconds in slowest))
    print(f"\n{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
