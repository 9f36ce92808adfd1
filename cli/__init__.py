"""The ``cortex`` command-line interface: thin commands over :mod:`cortex_trust`.

Modules here import only typer and the standard library at top level; the library is imported
inside each command so that ``cortex --help`` stays fast (see bench/README.md).
"""
