"""``python -m cervattn`` runs the command line."""

from .cli import main

raise SystemExit(main())
