"""MockEvent: an event for every mock record whose ``raw.data`` is a multiple of ``n``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker import util
from airflow_cloudmarker.contract import CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterator

CHECK = CheckMetadata(
    check_id="mock_multiple_of_n",
    title="Mock record data is a multiple of n",
    severity="low",
    resource_type="mock",
    risk="None: MockEvent exists to try Cloudmarker out and to test it, with MockCloud's records.",
    description="{data} is a multiple of {n}.",
    remediation="Divide {data} by {n} and confirm that the remainder is 0.",
)


class MockEvent:
    """Emit a ``mock_event`` when ``record['raw']['data']`` is a multiple of ``n`` (default 3).

    A record without ``raw.data`` counts as data 1 (no event unless ``n`` is 1).

    Example config::

        plugins:
          mockevent:
            params:
              n: 5
    """

    CHECK = CHECK

    def __init__(self, n: int = 3, severity: str = CHECK.severity):
        if isinstance(n, bool) or not isinstance(n, int) or n == 0:
            raise ValueError(f"MockEvent n must be a non-zero integer, not {n!r}")
        self._n = n
        self._severity = util.check_severity("MockEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event for a matching record."""
        raw = record.get("raw")
        data = raw.get("data", 1) if isinstance(raw, dict) else 1
        if not isinstance(data, int) or data % self._n != 0:
            return
        # A shallow copy of the record's ext: the event never changes it, and the check task encodes
        # the event before the next record (copying every nested value cost more than the check).
        ext = dict(record.get("ext") or ())
        ext.update(record_type="mock_event", data=data, n=self._n)
        yield {
            "ext": ext,
            "com": {
                "cloud_type": (record.get("com") or {}).get("cloud_type", "mock"),
                "record_type": "mock_event",
                "reference": str(data),
                **CHECK.event_com({"data": data, "n": self._n}, self._severity),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""
