"""FileStore: write records as JSON arrays, one file per origin worker."""

from __future__ import annotations

import os
from typing import IO

from airflow_cloudmarker import records as rec


class FileStore:
    """Write each origin worker's records to ``<path>/<audit>_<plugin>.json`` as one JSON array.

    Records go to a temporary file in the same directory, renamed over the ``.json`` file in
    ``done()``: a reader never sees a half-written array, and a failed run leaves the previous
    complete file in place. ``~`` in ``path`` is expanded.

    Example config::

        plugins:
          filestore:
            params:
              path: ~/cloudmarker
    """

    def __init__(self, path: str = "/tmp/cloudmarker"):
        self._path = os.path.expanduser(str(path))
        self._files: dict[str, tuple[IO[bytes], str]] = {}

    def _open(self, worker: str) -> IO[bytes]:
        if worker not in self._files:
            os.makedirs(self._path, exist_ok=True)
            tmp_path = os.path.join(self._path, f".{worker}.json.{os.getpid()}.tmp")
            handle = open(tmp_path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in done()
            handle.write(b"[\n")
            self._files[worker] = (handle, tmp_path)
            return handle
        handle = self._files[worker][0]
        handle.write(b",\n")
        return handle

    def write(self, record: dict) -> None:
        """Append ``record`` to the array of its origin worker (``com.origin_worker``)."""
        com = record.get("com") or {}
        worker = str(com.get("origin_worker") or com.get("record_type") or "records")
        self._open(worker).write(rec.dumps(record, indent=True))

    def done(self) -> None:
        """Close every array and rename the temporary files to their final names."""
        for worker, (handle, tmp_path) in self._files.items():
            handle.write(b"\n]\n")
            handle.close()
            os.replace(tmp_path, os.path.join(self._path, f"{worker}.json"))
        self._files = {}
