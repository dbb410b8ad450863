"""Object storage: artifacts, LFS objects, logs and the cold telemetry tier."""
