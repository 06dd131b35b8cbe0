"""What every fuzz test shares: how many inputs, and inputs made by mutating good ones.

``GATEHOUSE_FUZZ_EXAMPLES`` sets the number of inputs per parser: a few hundred in ``make test``
(the default), 100,000 in ``make chaos``. Each parser gets both random inputs and mutations of
valid ones (bit flips, cut, spliced, repeated and inserted bytes), since purely random bytes
rarely get past the first length or magic check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["EXAMPLES", "fuzz_settings", "mutated", "mutated_text"]

EXAMPLES = int(os.environ.get("GATEHOUSE_FUZZ_EXAMPLES", "300"))


def fuzz_settings(examples: int | None = None) -> settings:
    return settings(
        max_examples=examples or EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@st.composite
def _mutate(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(("flip", "set", "cut", "insert", "delete", "splice", "repeat")))
        n = len(data)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            data[draw(st.integers(0, n - 1))] = draw(
                st.sampled_from((0, 1, 0x7F, 0x80, 0xC0, 0xFF, 0xDC, 0xDD))
            )
        elif op == "cut" and n:
            data = data[: draw(st.integers(0, n - 1))]
        elif op == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "splice":
            other = draw(st.sampled_from(list(seeds)))
            i, j = draw(st.integers(0, n)), draw(st.integers(0, len(other)))
            data = data[:i] + other[j:]
        elif op == "repeat" and n:
            i = draw(st.integers(0, n - 1))
            data[i:i] = data[i : i + draw(st.integers(1, 32))] * draw(st.integers(1, 4))
    return bytes(data)


def mutated(seeds: Sequence[bytes], *, max_random: int = 300) -> st.SearchStrategy[bytes]:
    """Random bytes, or a valid input from ``seeds`` damaged a few times."""
    return st.one_of(st.binary(max_size=max_random), _mutate(seeds))


def mutated_text(seeds: Sequence[str], alphabet: str, *, max_random: int = 200) -> st.SearchStrategy[str]:
    """As :func:`mutated`, for text: random strings over ``alphabet`` or damaged seeds."""
    encoded = [s.encode("utf-8") for s in seeds]
    as_text = _mutate(encoded).map(lambda b: b.decode("utf-8", errors="replace"))
    return st.one_of(st.text(alphabet=alphabet, max_size=max_random), as_text)
