"""LATM, done safely: language-model-written Python tools, verified, sandboxed, cached and reused.

- ``static_check``: what a tool's source may say (readable errors for the model, not a boundary);
- ``sandbox`` / ``sandbox_child`` / ``layers`` / ``seccomp_filter``: each call in a fresh,
  unprivileged, resource-limited child under seccomp, Landlock and bubblewrap where available,
  JSON in and out;
- ``tool``: a verified tool and its evidence; ``maker``: the strong model writes and fixes it;
  ``user``: a cheap model turns a question into a call; ``dispatcher``: reuse or make;
  ``cache``: versioned tools in SQLite; ``toolbox``: all of it together; ``cli``: the commands.
"""
