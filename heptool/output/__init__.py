"""Rendering: records, JSON Lines / JSON writers, rich tables, raw bytes, hex dumps.

This ring turns core objects into output; it never parses the command line (no click) and
imports rich only inside the functions that draw with it (``heptool --help`` and every shell
TAB press must stay fast: tests/test_architecture.py).
"""
