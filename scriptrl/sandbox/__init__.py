"""Untrusted policy code runs here, never in the scriptrl process.

The environment stays in the trusted evaluator; only observations travel to the
worker and only actions come back. This package must stay import-light: the zygote
and a spawned worker import ``scriptrl.sandbox.worker`` in a fresh interpreter before any
lockdown (``client`` and ``forkserver`` are the trusted side and never run there).
"""
