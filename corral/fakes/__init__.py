"""In-memory implementations of every port, for tests and `corral serve --memory`. No pytest import."""
