"""Entrypoints: configuration, the punq bootstrap, the web app, the CLI."""
