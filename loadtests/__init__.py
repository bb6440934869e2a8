"""Load tests: Locust scenarios against example apps, run end to end by one command.

    python -m loadtests list
    python -m loadtests run plaintext --users 50 --spawn-rate 10 --run-time 30s \
        --p95-budget-ms 200 --out results/plaintext

Each scenario pairs a locustfile (``loadtests/locustfiles/``) with an example app
(``loadtests/example_apps.py``) and the server flags it needs (``loadtests/scenarios.py``); the
runner (``loadtests/runner.py``) starts Treadle on 127.0.0.1, runs Locust headless with
bounded users and time, always stops both, and judges the result (``loadtests/verdict.py``).
Locust is an optional extra: ``pip install '.[loadtest]'``.
"""
