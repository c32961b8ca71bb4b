"""Jobs that run as scripts, e.g. under spark-submit, which takes a file: read them with importlib.resources.

Alone in their package on purpose: a script's folder comes first on sys.path, so no sibling module may shadow
a top-level import.
"""
