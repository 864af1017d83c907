"""Public pulumi-docker programs, written (or translated) in Python, run under the mock runtime.

Each module names its source (`SOURCE`: repository, path, commit, language, and how it was
translated), says whether it deploys Redis (`DEPLOYS_REDIS`) and the stack and project it runs
in, and declares its resources in `program()` with the pulumi-docker SDK, as the source declares
them. `<module>.expect.json` holds the verdict and every reason the pack must give, in the form
of `tests/policy/external/*.json`'s `expect`.
"""
