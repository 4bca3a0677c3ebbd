"""MockCloud: generates mock records, to try the framework without a real cloud."""

from __future__ import annotations

from collections.abc import Sequence  # noqa: TC003 - check_param_types resolves __init__ hints at run time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


class MockCloud:
    """Generate ``record_count`` mock records.

    ``raw.data`` counts from 0; ``ext.record_type`` cycles through ``record_types``;
    ``com.record_type`` is ``mock`` (the tutorial's Splunk search ``com.record_type=mock``).

    Example config::

        plugins:
          mockcloud:
            params:
              record_count: 20
              record_types: [foo, bar, baz]
    """

    def __init__(self, record_count: int = 10, record_types: Sequence[str] = ("foo", "bar")):
        if isinstance(record_count, bool) or not isinstance(record_count, int) or record_count < 0:
            raise ValueError(f"MockCloud record_count must be a non-negative integer, not {record_count!r}")
        if isinstance(record_types, str) or not record_types:
            raise ValueError(f"MockCloud record_types must be a non-empty list, not {record_types!r}")
        self._record_count = record_count
        self._record_types = list(record_types)

    def read(self) -> Iterator[dict]:
        """Yield the mock records."""
        types = self._record_types
        n = len(types)
        for i in range(self._record_count):
            record_type = types[i % n]
            yield {
                "raw": {"data": i},
                "ext": {"cloud_type": "mock", "record_type": record_type},
                "com": {"cloud_type": "mock", "record_type": "mock"},
            }

    def done(self) -> None:
        """Nothing to clean up."""
