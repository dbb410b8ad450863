"""Transactional outbox: events written with the mutation, delivered later by a background relay."""
