"""The example Interstate mapper's policy, free of the component bindings.

``app.py`` adapts it to the WIT world; everything here imports only the standard library, so
``python3 -m unittest`` tests it on any CPython.
"""
