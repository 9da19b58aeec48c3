"""Trusted observation adapters: wrappers a description names (``[make] wrapper = "module:Class"``).

An adapter runs on the evaluator side, next to the environment, and turns its raw state into
the few named readings a readable program can use; the program only ever sees the readings.
"""
