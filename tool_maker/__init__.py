"""Language-model-written Python tools, verified and run in a sandbox (not built yet)."""
