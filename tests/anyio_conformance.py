"""Run anyio's own test suite on asyncio's loop and on the Reactor, and compare what passes.

Starlette and FastAPI run on anyio, so anyio's suite is the best outside judge of whether apps
run on the Reactor unmodified. The suite can be pointed at any loop: each async test runs once
more on `uvloop.new_event_loop` (its `asyncio+uvloop` parametrisation). This script

1. fetches anyio's sdist from PyPI (`pip download --no-binary :all:`, pinned: ANYIO_VERSION) and
   unpacks it, tests and all;
2. builds a venv outside the checkout with anyio, the suite's own test dependencies (its
   `test` dependency group, less uvloop) and Treadle, installed from a copy of this checkout;
3. runs the suite twice, keeping only the `asyncio+uvloop` tests (`anyio_shims/
   treadle_anyio_plugin.py`): once with `anyio_shims/asyncio` first on sys.path, whose `uvloop`
   hands out asyncio's own loop (the baseline), once with `anyio_shims/reactor`, whose `uvloop`
   hands out the Reactor;
4. runs once more, alone, each test that passed on asyncio's loop and failed on the Reactor
   (anyio's suite has timing-sensitive tests that fail now and then on either loop, as CPython's
   regrtest reruns its failures), and exits non-zero if any still fails.

    python tests/anyio_conformance.py                # report; exit 1 on a difference
    python tests/anyio_conformance.py --json out.json --python /path/to/python3.13

The venv's Python must be one anyio's release supports (4.16: 3.10 and newer).

Two things about the machine rather than the loop. Where `localhost` does not resolve to ::1
(containers whose /etc/hosts lists only 127.0.0.1), the suite's IPv6 half would fail at name
resolution on both loops alike, leaking sockets into the tests after it; run as root where
`unshare` exists, the suite then sees a private /etc/hosts that names ::1 too (a mount namespace
of its own; the machine's file is untouched). And the few tests that need the Internet
(test_getaddrinfo resolves "faß.de") fail on both loops where there is none, as in CI; the
`network` mark cannot leave them out, as anyio puts it on whole classes that use only loopback.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHIMS = os.path.join(HERE, "anyio_shims")
# The release whose suite is the judge. A newer anyio may add tests the Reactor fails: raise
# the pin on purpose, with the run's result, not by surprise in CI.
ANYIO_VERSION = "4.16.0"
KINDS = ("asyncio", "reactor")
PASSED = "passed"
# What this checkout installs as `treadle` (pyproject.toml's package-dir).
TREADLE_FILES = ("pyproject.toml", "README.md", "setup.cfg", "treadle", "reactor", "server")
# uvloop is what the shims stand in for; winloop is Windows' uvloop.
NOT_INSTALLED = ("uvloop", "winloop")
# Tests that pass on asyncio's loop and may fail on the Reactor, each with why. None today.
KNOWN_DIFFERENCES: dict[str, str] = {}


def log(message: str) -> None:
    print(f"[anyio {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, stdin=subprocess.DEVNULL, **kwargs)


# ====================================================================== the suite and its venv


def fetch_anyio(workdir: str, version: str) -> str:
    """Download and unpack anyio's sdist; returns the unpacked folder (holding tests/)."""
    dist = os.path.join(workdir, "dist")
    archive = os.path.join(dist, f"anyio-{version}.tar.gz")
    if not os.path.exists(archive):
        run([sys.executable, "-m", "pip", "download", f"anyio=={version}", "--no-binary", ":all:",
             "--no-deps", "-d", dist, "-q"])
    source = os.path.join(workdir, f"anyio-{version}")
    shutil.rmtree(source, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]  # no links, no devices
        for member in members:
            if os.path.isabs(member.name) or ".." in member.name.split("/"):
                raise RuntimeError(f"unexpected path in {archive}: {member.name}")
        tar.extractall(workdir, members=members)
    return source


def suite_requirements(source: str) -> list[str]:
    """The suite's `test` dependency group (PEP 735) from anyio's pyproject.toml, less uvloop."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    with open(os.path.join(source, "pyproject.toml"), "rb") as f:
        groups = tomllib.load(f)["dependency-groups"]
    requirements = []
    for requirement in groups["test"]:
        if isinstance(requirement, dict):  # {include-group = ...}: not used by anyio's test group
            raise RuntimeError(f"unsupported dependency-group entry {requirement!r}")
        requirement = " ".join(requirement.split())
        name = requirement.split(";")[0].split(">")[0].split("=")[0].split("<")[0].split("~")[0].strip()
        if name.split("[")[0].lower() not in NOT_INSTALLED:
            requirements.append(requirement)
    return requirements


def build_venv(workdir: str, source: str, python: str) -> str:
    """A fresh venv with anyio, its test dependencies and this checkout's Treadle; returns its python."""
    venv = os.path.join(workdir, "venv")
    run([python, "-m", "venv", "--clear", venv])
    venv_python = os.path.join(venv, "bin", "python")
    # Treadle from a copy: building in the checkout would leave build/ and *.egg-info behind.
    treadle_source = os.path.join(workdir, "treadle-src")
    shutil.rmtree(treadle_source, ignore_errors=True)
    os.makedirs(treadle_source)
    for name in TREADLE_FILES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(treadle_source, name),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif os.path.exists(path):
            shutil.copy2(path, treadle_source)
    run([venv_python, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run([venv_python, "-m", "pip", "install", "-q", source, treadle_source, *suite_requirements(source)])
    return venv_python


def hosts_wrapper(workdir: str) -> list[str]:
    """A command prefix that runs the suite with ::1 named localhost, or [] if none is needed or possible."""
    try:
        socket.getaddrinfo("localhost", 0, socket.AF_INET6)
        return []
    except socket.gaierror:
        pass
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return []  # no IPv6 at all: the suite fails its IPv6 tests on both loops
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        log("localhost has no IPv6 address here and unshare is unavailable: IPv6 tests fail on both loops")
        return []
    hosts = os.path.join(workdir, "hosts")
    with open("/etc/hosts") as machine, open(hosts, "w") as ours:
        ours.write(machine.read().rstrip("\n") + "\n::1 localhost ip6-localhost ip6-loopback\n")
    prefix = [unshare, "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
    try:
        run([*prefix, "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        log("cannot make a mount namespace here: IPv6 tests fail on both loops")
        return []
    return prefix


# ====================================================================== running and comparing


def run_suite(kind: str, venv_python: str, source: str, prefix: list[str], results: str,
              node_ids: list[str] | None = None, output: str | None = None) -> dict[str, str]:
    """Run the suite's asyncio+uvloop tests on `kind`'s loop; {node id: outcome}."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(SHIMS, kind), SHIMS])
    env.pop("PYTHONASYNCIODEBUG", None)
    command = [*prefix, venv_python, "-m", "pytest", "-p", "treadle_anyio_plugin",
               f"--treadle-results={results}", "-p", "no:cacheprovider", "-q",
               *(node_ids or [])]
    with open(output or os.devnull, "w") as out:
        proc = subprocess.run(command, cwd=source, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, timeout=1800)
    if not os.path.exists(results):
        raise RuntimeError(f"the suite on {kind} wrote no results (pytest exit {proc.returncode}); see {output}")
    outcomes = {}
    with open(results) as f:
        for line in f:
            record = json.loads(line)
            outcomes[record["id"]] = record["outcome"]
    os.unlink(results)
    return outcomes


def differences(outcomes: dict[str, dict[str, str]]) -> list[str]:
    """Tests that passed on asyncio's loop and did not pass on the Reactor."""
    reactor = outcomes["reactor"]
    return sorted(test for test, outcome in outcomes["asyncio"].items()
                  if outcome == PASSED and reactor.get(test, "missing") != PASSED)


def compare(workdir: str, venv_python: str, source: str) -> dict:
    prefix = hosts_wrapper(workdir)
    outcomes: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        started = time.monotonic()
        output = os.path.join(workdir, f"{kind}.log")
        outcomes[kind] = run_suite(kind, venv_python, source, prefix, os.path.join(workdir, f"{kind}.jsonl"),
                                   output=output)
        counts = collections.Counter(outcomes[kind].values())
        log(f"{kind}: {dict(sorted(counts.items()))} in {time.monotonic() - started:.0f} s (log: {output})")
    first = differences(outcomes)
    rerun = {}
    if first:
        log(f"running {len(first)} test(s) again on the Reactor, alone: {', '.join(first)}")
        rerun = run_suite("reactor", venv_python, source, prefix, os.path.join(workdir, "rerun.jsonl"),
                          node_ids=first, output=os.path.join(workdir, "rerun.log"))
        for test, outcome in rerun.items():
            outcomes["reactor"][test] = outcome
    return {"outcomes": outcomes, "first_differences": first, "rerun": rerun}


def report(result: dict, version: str) -> int:
    outcomes = result["outcomes"]
    for kind in KINDS:
        counts = collections.Counter(outcomes[kind].values())
        print(f"{kind:>8}: {counts[PASSED]} passed of {len(outcomes[kind])} "
              f"({', '.join(f'{n} {o}' for o, n in sorted(counts.items()) if o != PASSED) or 'nothing else'})")
    for test in result["first_differences"]:
        if outcomes["reactor"].get(test) == PASSED:
            print(f"passed on its rerun (failed in the full run): {test}")
    remaining = differences(outcomes)
    unexpected = [test for test in remaining if test not in KNOWN_DIFFERENCES]
    for test in remaining:
        if test in KNOWN_DIFFERENCES:
            print(f"known difference: {test}: {KNOWN_DIFFERENCES[test]}")
    for test in unexpected:
        outcome = outcomes["reactor"].get(test, "missing")
        print(f"DIFFERENCE: {test}: passed on asyncio's loop, {outcome} on the Reactor")
    better = [test for test, outcome in outcomes["reactor"].items()
              if outcome == PASSED and outcomes["asyncio"].get(test) != PASSED]
    for test in sorted(better):
        print(f"passed on the Reactor only: {test} ({outcomes['asyncio'].get(test, 'missing')} on asyncio's loop)")
    on_asyncio = sum(outcome == PASSED for outcome in outcomes["asyncio"].values())
    on_reactor = sum(outcome == PASSED for outcome in outcomes["reactor"].values())
    print(f"anyio {version}: {on_reactor} passed on the Reactor, {on_asyncio} on asyncio's loop; "
          f"{len(unexpected)} passed on asyncio's loop only")
    return 1 if unexpected else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the venv's interpreter (default: this one)")
    parser.add_argument("--anyio-version", default=ANYIO_VERSION)
    parser.add_argument("--workdir", help="where the sdist, venv and logs go (default: a temporary folder)")
    parser.add_argument("--json", help="also write every outcome here")
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="treadle-anyio-")
    os.makedirs(workdir, exist_ok=True)
    started = time.monotonic()
    log(f"anyio {args.anyio_version} into {workdir}")
    source = fetch_anyio(workdir, args.anyio_version)
    venv_python = build_venv(workdir, source, args.python)
    version = subprocess.run([venv_python, "-c", "import sys; print(sys.version.split()[0])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    log(f"venv ready (Python {version}) after {time.monotonic() - started:.0f} s")
    result = compare(workdir, venv_python, source)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    status = report(result, args.anyio_version)
    log(f"done in {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
