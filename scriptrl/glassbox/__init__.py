"""The glass box: everything that reads a program and its run after the search.

Explain (``trace``), render, export (with a runtime shield), compare, behavioural diff, the
sampled and bounded ``verify``, the SMT ``prove`` and the run ``report``. Nothing here feeds
back into the search; it only reads programs and run stores, so it sits last in the pipeline.
"""
