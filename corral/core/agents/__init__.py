"""Agent sessions: a coding agent run under a delegated, expiring identity, streamed live, every action traced."""
