"""The ground floor: the vocabulary every package shares — ``core.model`` (point ids,
``Sample``, ``Event``, quality, the clock) and ``core.errors`` (the small error tree). It
imports nothing of the project, so ``drivers``, ``rules``, ``cloud_sync``, ``simulators`` and
``edge`` all stand on it and no import runs up into ``edge``.
"""
