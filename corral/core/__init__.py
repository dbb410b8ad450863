"""The pure domain: standard library and attrs only, everything else behind ports."""
