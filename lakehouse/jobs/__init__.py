"""Jobs that run as scripts, e.g. under spark-submit, which takes a file: read them with importlib.resources.

Alone in their package on purpose: a script's folder comes first on sys.path, so no sibling module may shadow
a top-level import.
"""

# A job's exit status when the data or the contract is wrong: retrying cannot help, so the run fails at once
# with the reason the job printed last.
EXIT_REJECTED = 2
