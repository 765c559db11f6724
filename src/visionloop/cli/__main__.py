"""``python -m visionloop.cli``."""

from visionloop.cli.app import main

main()
