"""Blind matching: indicators an owner cannot share still protect every ally (docs/blind.md).

`sets` (owner publishes), `evaluate` (owner answers allies), `resolve` (ally asks),
`hits` (ally matches and reports to the owner alone), `psi` (CIRCL PSS, the weaker
group-key format). Metrics for /metrics: `blind.evaluate.metrics()`.
"""
