"""Public pulumi-docker programs, written (or translated) in Python, run under the mock runtime.

Each module names its source (`SOURCE`: repository, path, commit, language, and how it was
translated), says whether it deploys Redis (`DEPLOYS_REDIS`), the stack and project it runs in,
the verdict and reasons the pack must give (`EXPECT`, as in `tests/policy/external/*.json`), and
declares its resources in `program()` with the pulumi-docker SDK, as the source declares them.
"""
