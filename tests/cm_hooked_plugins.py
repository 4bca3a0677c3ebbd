"""A user's plugin module that imports an Airflow provider hook at its top, as many real plugins do.

Loading it to validate a config imports Airflow; if that happened before ``cloudmarker`` set its
embedded environment, Airflow would settle on ``~/airflow`` and find no DAGs. Only subprocesses
import it (``cloudmarker -n`` in tests/test_first_use.py).
"""

from __future__ import annotations

from airflow.providers.smtp.hooks.smtp import SmtpHook


class HookedCloud:
    """Yields ``record_count`` records naming the hook class its module imported."""

    def __init__(self, record_count: int = 2):
        self._count = record_count

    def read(self):
        for i in range(self._count):
            yield {"raw": {"data": i, "hook": SmtpHook.__name__}, "ext": {"record_type": "hooked"}, "com": {}}

    def done(self):
        pass
