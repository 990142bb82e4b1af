"""`python -m console.lab up|down|reset|status|env`: the lab without loading Django settings."""

import sys

from console.lab.cli import main

sys.exit(main())
