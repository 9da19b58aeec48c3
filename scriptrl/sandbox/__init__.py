"""Untrusted policy code runs here, never in the scriptrl process.

The environment stays in the trusted evaluator; only observations travel to the
worker and only actions come back. This package must stay import-light: the worker
imports ``scriptrl.sandbox.worker`` inside a fresh interpreter before locking down.
"""
