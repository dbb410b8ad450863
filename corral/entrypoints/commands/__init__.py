"""Domain CLI commands: each module registers itself with corral.entrypoints.cli.command."""
