"""Workloads: "run this command with this environment in this workspace, stream its output, stop it on demand".

One port (``Executor``) used by pipeline steps and agent sessions alike, with a ``local`` adapter (process
groups; the embedded default) and a ``kubernetes`` adapter (pods).
"""
