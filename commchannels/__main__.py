"""``python -m commchannels`` (also what ``torchrun -m commchannels`` runs)."""

import sys

from commchannels.cli import main

sys.exit(main())
