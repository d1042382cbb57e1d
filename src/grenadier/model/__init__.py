"""The run's vocabulary: options and their flags, steps, step results and findings.

Every layer that speaks of a run imports these; nothing here imports a layer that runs one.
"""
