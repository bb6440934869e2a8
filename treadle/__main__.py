"""``python -m treadle`` is the same as the ``treadle`` command."""

from treadle.server.cli import main

if __name__ == "__main__":
    main()
