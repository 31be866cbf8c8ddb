"""``python -m qctl``."""

from qctl.cli import main

main()
