"""``python -m loadtests``: see ``loadtests.cli``."""

from loadtests.cli import main

main()
