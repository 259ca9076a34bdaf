"""``python -m resonetics`` is the ``resonetics`` command."""

from resonetics.cli import main

main()
