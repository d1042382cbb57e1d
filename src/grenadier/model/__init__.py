"""The run's vocabulary: steps, step results, findings, roles and state keys.

Every layer that speaks of a run imports these; nothing here imports another grenadier layer.
"""
