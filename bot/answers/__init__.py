"""The use cases the CLI, the digest job and the Slack answers share (docs/design.md,
"Use cases"): a patrol run from a `PatrolPlan` (`patrol`), a question about a pod or a
workload answered from the live cluster and the record (`investigate`), and what
restarted in a window (`restarts_in`, `restarts_by_namespace`). They sequence the I/O
(cluster, store); the maths and the story model stay in `bot.patrol` and `bot.diagnosis`.
"""
