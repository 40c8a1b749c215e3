"""Engine operations: what each CLI command does, callable from tests.

``images`` — import, tag, remove, history, inspect, list.
``containers`` — create, run, start, remove, diff, commit, export, list.
"""
