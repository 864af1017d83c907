"""The local applier: deploys a rendered stack on the local Docker engine. It is not Pulumi.

Where no Pulumi engine exists (docs/design.md#without-a-pulumi-engine),
`python -m infra.apply up --stack S` renders the real program under Pulumi's mock runtime
(`infra.render`), translates each declared pulumi-docker resource (`translate.py`, pure), orders
them (`plan.py`, pure) and creates the matching Docker objects with the docker SDK
(`engine.py`). No state file, no diff: `up` recreates, `down`
removes every object labelled `io.secure-redis.stack=S`.
"""
