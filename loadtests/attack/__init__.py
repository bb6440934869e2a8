"""The adversarial harness: ``python -m loadtests.attack`` (docs/reliability.md).

It starts Treadle on 127.0.0.1 (``python -m treadle`` in a subprocess, with the flags each
attack needs), or targets one given by ``--url`` (loopback only), runs each attack while a
control client measures its latency, and prints a table: attack, connections, the control
client's p99, the server's memory and open descriptors before, at the peak of and after
the attack, and what the server did. Every attack has a count and a time limit, so the
whole run ends by itself; ``--quick`` runs each small (the smoke test's mode).

    python -m loadtests.attack                    # everything, full size (about 12 minutes)
    python -m loadtests.attack --quick            # everything, small (about 2 minutes)
    python -m loadtests.attack --only slowloris --only bomb
    python -m loadtests.attack --list

Modules: ``http_attacks`` (HTTP/1.1), ``fd_flood``, ``ws_attacks`` (WebSocket), ``h2_attacks``
(HTTP/2), ``stats_attack`` (the --stats-port endpoint), ``faults`` (apps that fail),
``processes`` (--workers 2 under wrk: SIGKILL, SIGHUP, SIGTERM), ``soak`` (a mixed million
requests);
``clients`` (the attackers' tools), ``target`` (the server, its measures, the control
client), ``run`` and ``report`` (running an attack, the table).
"""
