"""``python -m loadtests.attack``: see ``loadtests.attack.cli``."""

from loadtests.attack.cli import main

main()
