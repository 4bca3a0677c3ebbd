"""FileStore: write records as JSON arrays, one file per origin worker."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import weakref
from typing import IO, TYPE_CHECKING

import orjson

from airflow_cloudmarker import records as rec

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("airflow_cloudmarker.stores.filestore")

#: Temporary files are ``.<worker>.json.<host>-<pid>.tmp``: the host and pid tell whose they are.
_TEMP_NAME = re.compile(r"\..+\.json\.(?P<host>.+)-(?P<pid>\d+)\.tmp")
#: records.dumps(indent=True) as orjson options: a record that only needs orjson skips the wrapper.
_INDENTED = rec.DUMPS_OPTIONS | orjson.OPT_INDENT_2


class FileStore:
    """Write each origin worker's records to ``<path>/<audit>_<plugin>.json`` as one JSON array.

    The directory is created when the store is constructed, so an audit that produced nothing
    still leaves it where the user looks. Records go to a temporary file in that directory,
    renamed over the ``.json`` file in ``done()``: a reader never sees a half-written array,
    and a failed run leaves the previous complete file in place. Temporary files never outlive
    a failure: a failing ``write()`` or ``done()``, ``abort()`` (which the framework calls when
    the task fails) and a store dropped or left at interpreter exit before ``done()`` delete
    them, and a new FileStore deletes those that a killed process on this host left behind.
    ``~`` in ``path`` is expanded.

    Example config::

        plugins:
          filestore:
            params:
              path: ~/cloudmarker
    """

    #: As an alert under ``alert_on: changes`` it still gets every event: it is the record (contract.ABILITIES).
    keeps_every_event = True

    def __init__(self, path: str = "/tmp/cloudmarker"):
        self._path = os.path.expanduser(str(path))
        try:
            os.makedirs(self._path, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OSError(
                f"FileStore param path {path!r}: cannot create directory {self._path} ({reason}); "
                "set path to a directory this user can write"
            ) from exc
        self._pid = os.getpid()
        self._suffix = f".json.{socket.gethostname()}-{self._pid}.tmp"
        self._files: dict[str, tuple[IO[bytes], str]] = {}
        # A store abandoned before done() (dropped, or still open at exit) deletes its temp files.
        weakref.finalize(self, _discard, self._files, self._pid)
        _remove_orphans(self._path)

    def _handle(self, worker: str) -> IO[bytes]:
        """The worker's open temporary file, positioned for the next array element."""
        if worker in self._files:
            handle = self._files[worker][0]
            handle.write(b",\n")
            return handle
        tmp_path = os.path.join(self._path, f".{worker}{self._suffix}")
        handle = open(tmp_path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in done() or abort()
        self._files[worker] = (handle, tmp_path)
        handle.write(b"[\n")
        return handle

    def write(self, record: dict) -> None:
        """Append ``record`` to the array of its origin worker (``com.origin_worker``).

        A record that cannot be encoded raises before anything is written, so the arrays stay
        valid. A failing file write (a full disk) deletes every temporary file and re-raises.
        """
        self.write_batch((record,))

    def write_batch(self, records: Sequence[dict]) -> None:
        """Append ``records`` in order, as ``write()`` on each would, encoding them all before writing any.

        The task hands over whole batches (``contract.ABILITIES``): one file write per origin
        worker and batch instead of two per record.
        """
        groups: dict[str, list[bytes]] = {}
        dumps, option = orjson.dumps, _INDENTED
        for record in records:
            com = record.get("com") or {}
            worker = com.get("origin_worker") or com.get("record_type") or "records"
            if type(worker) is not str:
                worker = str(worker)
            try:
                encoded = dumps(record, option=option)
            except rec.JSONEncodeError:
                encoded = rec.dumps(record, indent=True)  # what orjson alone cannot encode (sets, SDK models)
            group = groups.get(worker)
            if group is None:
                groups[worker] = [encoded]
            else:
                group.append(encoded)
        try:
            for worker, encoded_records in groups.items():
                self._handle(worker).write(b",\n".join(encoded_records))
        except BaseException:
            self.abort()
            raise

    def done(self) -> None:
        """Close every array and rename the temporary files to their final names.

        Each file is flushed to disk before its rename, so a ``.json`` file is always complete.
        If finishing one fails, the temporary files left are deleted and the error re-raised.
        """
        try:
            for worker, (handle, tmp_path) in list(self._files.items()):
                handle.write(b"\n]\n")
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
                os.replace(tmp_path, os.path.join(self._path, f"{worker}.json"))
                del self._files[worker]
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Delete every temporary file without touching the complete ``.json`` files.

        The framework calls this when the store's task fails or is interrupted before ``done()``;
        calling it more than once, or after ``done()``, does nothing.
        """
        _discard(self._files, self._pid)


def _discard(files: dict[str, tuple[IO[bytes], str]], owner_pid: int) -> None:
    """Close and delete the temporary files in ``files``; only in the process that opened them.

    A forked child that inherits a store must not delete its parent's files when it exits.
    """
    if os.getpid() != owner_pid:
        return
    for handle, tmp_path in files.values():
        with contextlib.suppress(OSError):  # its flush may fail (the disk is full): the file goes anyway
            handle.close()
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("FileStore could not delete temporary file %s: %s", tmp_path, exc)
    files.clear()


def _remove_orphans(path: str) -> None:
    """Delete temporary files that a process of this host, no longer running, left in ``path``.

    A killed run (``kill -9``, a crash) cannot clean up after itself; the next FileStore on the
    same directory does. Files of other hosts (a shared volume) and of live processes are kept.
    """
    host, me = socket.gethostname(), os.getpid()
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if not match or match["host"] != host or int(match["pid"]) == me or _alive(int(match["pid"])):
            continue
        try:
            os.unlink(entry.path)
            log.warning("FileStore deleted %s, left behind by process %s that no longer runs", entry.path, match["pid"])
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # exists but belongs to another user, or not a pid of this system
        return True
    return True
