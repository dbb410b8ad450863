"""``python -m corral`` runs the CLI."""

from corral.entrypoints.cli import main

raise SystemExit(main())
