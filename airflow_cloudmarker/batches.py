"""Record batches through XComs, streamed one batch at a time.

A producing task pushes each batch as its own XCom (``batch_00000``, ``batch_00001``, ...) and
returns a small manifest (its task id, map index and counts). With Airflow's object-storage XCom
backend each batch is a file in the configured object store (a local directory, S3, GCS, Azure
Blob), and only the path sits in the metadata DB. A consuming task reads the manifests of its
upstream tasks, then pulls and decodes one batch at a time, so memory stays flat however large
the cloud is. Only manifests of tasks that succeeded exist, so a consumer never reads a failed
task's partial output.

Each batch value is ``{"count": n, "records": "<JSON array>"}``: records are encoded once with
orjson (datetimes as ISO strings) instead of being walked dict by dict by Airflow's XCom
encoder and decoder, which is several times slower for large batches. A batch whose records
all get the same ``com`` fields (where they came from: audit, plugin, run) carries them once,
as ``"stamp": {...}``, and ``read_batches`` puts them into each record's ``com`` as it decodes
it: encoding and decoding those fields in every record cost more than the record itself.

With the object-storage XCom backend (what ``cloudmarker`` and the compose file configure), a
task writes its batches as files itself, beside the XCom files of its run
(``<xcom_objectstorage_path>/<dag>/<run>/<task>/cloudmarker-batches-<map index>-try<n>/``), and only
the manifest (which names that folder) is an XCom. Each batch through the XCom API cost two
round trips to the Execution API (push, pull) and Airflow's JSON encoding of the records text
into a JSON string (every quote escaped), then its decoding: about 60 ms a batch here, a
quarter of a mock audit of a million records. The files live and go with the run's XCom files
(``cloudmarker -n``'s purge, ``--purge-xcoms``), and a try writes its own folder, so a retried
task's consumers read the batches of the try that succeeded, once. With another XCom backend the
batches are XCom values, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from airflow_cloudmarker import records as rec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

log = logging.getLogger(__name__)

_dumps, _json_default, _DUMPS_OPTIONS = orjson.dumps, rec.json_default, rec.DUMPS_OPTIONS

DEFAULT_BATCH_RECORDS = 50_000
DEFAULT_BATCH_BYTES = 4_000_000
BATCH_KEY_FORMAT = "batch_{:05d}"
MANIFEST_KEY = "return_value"  # Airflow's key for a task's return value


class XComAccess(Protocol):
    """The part of Airflow's runtime task instance this module uses."""

    task_id: str
    map_index: int
    # Runtime task instances also have dag_id, run_id and try_number: with them (and the
    # object-storage XCom backend) batches are written as files, see batch_folder().

    def xcom_push(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` for this task try (Airflow's XCom backend decides where)."""

    def xcom_pull(self, task_ids: Any = None, key: str = ..., **kwargs: Any) -> Any:
        """Read the XCom ``key`` of ``task_ids``; a list of task ids gives one value per id."""


@dataclass(frozen=True)
class BatchLimits:
    """When a batch is full: at ``records`` records or ``bytes`` of encoded JSON, whichever comes first.

    Bytes bound the memory of a batch whatever the size of a record (a mock record is 300 bytes,
    an Azure VM several kilobytes); fewer, larger batches save XCom round trips, which cost tens
    of milliseconds each.
    """

    records: int = DEFAULT_BATCH_RECORDS
    bytes: int = DEFAULT_BATCH_BYTES


class BatchWriter:
    """Encode records as they come and push them as XCom batches within ``limits``.

    Each record is encoded once, on arrival, so the writer holds compact JSON, not dicts.
    """

    def __init__(self, ti: XComAccess, limits: BatchLimits | None = None, stamp: dict | None = None):
        self._ti = ti
        self._limits = limits or BatchLimits()
        #: Where batches are written as files (None: as XCom values), made empty on the first flush.
        self._folder = batch_folder(ti)
        self._folder_ready = False
        #: ``com`` fields of every record of the batch being written, given once (``set_stamp``).
        self.stamp = dict(stamp) if stamp else None
        self._stamp_bytes = _stamp_bytes(self.stamp)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.batches = 0
        self.records = 0
        #: Records that held values JSON cannot carry, repaired by ``records.repair``.
        self.repaired = 0
        #: (``where`` of the first repaired record, its first repaired field, how many fields it had).
        self.first_repair: tuple[Any, str, int] | None = None

    def add(self, record: dict, where: Any = None) -> None:
        """Encode and queue ``record``; ``where`` (its index, say) names it if it must be repaired.

        Only a record orjson refuses takes the slow repair path: a clean one costs one encode.
        """
        try:
            encoded = _dumps(record, default=_json_default, option=_DUMPS_OPTIONS)  # records.dumps, one call less
        except rec.JSONEncodeError:
            encoded = self._repaired(record, where)
        self._pending.append(encoded)
        # Counted as the decoded record will be, with its stamp: the limit bounds the consumers' memory.
        self._pending_bytes += len(encoded) + self._stamp_bytes
        if len(self._pending) >= self._limits.records or self._pending_bytes >= self._limits.bytes:
            self.flush()

    def add_encoded(self, encoded: bytes) -> None:
        """Queue a record its producer encoded already (with ``records.dumps``), as ``add`` would queue it."""
        self._pending.append(encoded)
        self._pending_bytes += len(encoded) + self._stamp_bytes
        if len(self._pending) >= self._limits.records or self._pending_bytes >= self._limits.bytes:
            self.flush()

    def set_stamp(self, stamp: dict | None) -> None:
        """Stamp the records added from now on with ``stamp`` (the queued ones keep theirs: they go out first)."""
        if stamp != self.stamp:
            self.flush()
            self.stamp = dict(stamp) if stamp else None
            self._stamp_bytes = _stamp_bytes(self.stamp)

    def _repaired(self, record: dict, where: Any) -> bytes:
        fixed, repairs = rec.repair(record)
        self.repaired += 1
        if self.first_repair is None:
            self.first_repair = (where, repairs.first or "no field changed", repairs.count)
        return rec.dumps(fixed)

    def flush(self) -> None:
        """Push what is queued as the next batch now; ``manifest()`` calls it, so callers rarely need to."""
        if not self._pending:
            return
        if self._folder is not None:
            self._write_file()
        else:
            text = (b"[" + b",".join(self._pending) + b"]").decode("utf-8")
            value: dict[str, Any] = {"count": len(self._pending), "records": text}
            if self.stamp:
                value["stamp"] = self.stamp
            self._ti.xcom_push(BATCH_KEY_FORMAT.format(self.batches), value)
        self.records += len(self._pending)
        self.batches += 1
        self._pending = []
        self._pending_bytes = 0

    def _write_file(self) -> None:
        """Write the queued records as the next batch file: ``{"count":n,"stamp":{...},"records":[...]}``.

        The records are joined as they were encoded, never decoded again; the folder is created
        (and emptied of anything an earlier run of this same try left) before the first file.
        """
        folder = self._folder
        if not self._folder_ready:
            if folder.exists():
                folder.rmdir(recursive=True)
            folder.mkdir(parents=True, exist_ok=True)
            self._folder_ready = True
        head = b'{"count":%d,' % len(self._pending)
        if self.stamp:
            head += b'"stamp":' + rec.dumps(self.stamp) + b","
        body = b"".join((head, b'"records":[', b",".join(self._pending), b"]}"))
        (folder / batch_file_name(self.batches)).write_bytes(body)

    def manifest(self, **extra: Any) -> dict:
        """Flush what is left and return the manifest the task returns as its XCom."""
        self.flush()
        map_index = getattr(self._ti, "map_index", -1)
        manifest = {
            "task_id": self._ti.task_id,
            "map_index": -1 if map_index is None else map_index,
            "batches": self.batches,
            "records": self.records,
            "repaired": self.repaired,
            **extra,
        }
        if self._folder is not None:
            manifest["folder"] = str(self._folder)
        return manifest


def batch_file_name(number: int) -> str:
    """``batch_00000.json``: the name of a batch file in its task try's folder."""
    return BATCH_KEY_FORMAT.format(number) + ".json"


def object_store_base() -> str | None:
    """The XCom object store's base URL when the object-storage XCom backend is configured, else None."""
    from airflow.configuration import conf

    backend = conf.get("core", "xcom_backend", fallback="") or ""
    path = conf.get("common.io", "xcom_objectstorage_path", fallback="") or ""
    if not path or not backend:
        return None
    try:
        import importlib

        from airflow.providers.common.io.xcom.backend import XComObjectStorageBackend

        module_name, _, class_name = backend.rpartition(".")
        backend_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        return None
    if not (isinstance(backend_class, type) and issubclass(backend_class, XComObjectStorageBackend)):
        return None
    return path


def batch_folder(ti: Any) -> Any | None:
    """The folder of this task try's batch files (an ``ObjectStoragePath``), or None to push them as XComs.

    None when the object-storage XCom backend is not configured, or ``ti`` is not a runtime task
    instance (it lacks dag_id, run_id or try_number).
    """
    names = [getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id")]
    try_number = getattr(ti, "try_number", None)
    if not all(isinstance(name, str) and name for name in names) or not isinstance(try_number, int):
        return None
    base = object_store_base()
    if base is None:
        return None
    from airflow.sdk import ObjectStoragePath

    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else map_index
    return ObjectStoragePath(base).joinpath(*names, f"cloudmarker-batches-{map_index}-try{try_number}")


def _stamp_bytes(stamp: dict | None) -> int:
    """What a stamp adds to each record's JSON (at least the separator between records)."""
    return 1 + (len(rec.dumps(stamp)) if stamp else 0)


def push_manifest(ti: XComAccess, manifest: dict) -> None:
    """Push ``manifest`` as the task's return value now, for a task about to fail on purpose.

    Airflow pushes a return value only when a task succeeds; a check that delivers the events of
    its good records and then fails (so the run says failed) pushes it itself. The next try of the
    task clears it, like every XCom of the try before.
    """
    ti.xcom_push(MANIFEST_KEY, manifest)


def upstream_manifests(ti: XComAccess, task_ids: Iterable[str]) -> list[dict]:
    """Manifests of the upstream tasks (every map index) that completed; failed ones have none."""
    task_ids = list(task_ids)
    if not task_ids:
        return []
    found = ti.xcom_pull(task_ids=task_ids, key=MANIFEST_KEY)
    if isinstance(found, dict):
        found = [found]
    return [m for m in (found or []) if isinstance(m, dict) and "batches" in m]


def read_batches(ti: XComAccess, manifests: Iterable[dict], extra: dict | None = None) -> Iterator[list[dict]]:
    """Yield the record batches of ``manifests`` one at a time, each record stamped with its batch's ``stamp``.

    ``extra`` fields go into every record's ``com`` too, after the batch's (a store's target fields):
    one update per record for both.
    """
    for records, stamp in read_unstamped(ti, manifests):
        fields = {**stamp, **extra} if stamp and extra else stamp or extra
        if fields:
            stamp_all(records, fields)
        yield records


def stamp_all(records: list[dict], fields: dict) -> None:
    """``records.stamp`` on every record, inlined: it runs once per record of every task."""
    for record in records:
        com = record.get("com")
        if type(com) is dict:
            com.update(fields)
        else:
            rec.stamp(record, fields)


def read_unstamped(ti: XComAccess, manifests: Iterable[dict]) -> Iterator[tuple[list[dict], dict | None]]:
    """Yield ``(records, stamp)`` per batch: the records as encoded, and the com fields they all get (or None).

    For a consumer that passes records on with the same stamp and needs only a field or two of it.
    """
    for manifest in manifests:
        if manifest.get("folder"):
            yield from _read_files(manifest)
            continue
        for number in range(manifest["batches"]):
            key = BATCH_KEY_FORMAT.format(number)
            value = ti.xcom_pull(task_ids=manifest["task_id"], key=key, map_indexes=manifest["map_index"])
            if value is None:
                raise RuntimeError(
                    f"XCom {key} of {manifest['task_id']}[{manifest['map_index']}] is missing: "
                    f"the XCom object store lost it or the upstream task was cleared; rerun the upstream task"
                )
            yield rec.loads(value["records"]), value.get("stamp") or None


def _read_files(manifest: dict) -> Iterator[tuple[list[dict], dict | None]]:
    """``read_unstamped`` for a manifest whose batches are files in its ``folder``."""
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(manifest["folder"])
    for number in range(manifest["batches"]):
        path = folder / batch_file_name(number)
        try:
            value = rec.loads(path.read_bytes())
        except FileNotFoundError:
            raise RuntimeError(
                f"batch file {path} of {manifest['task_id']}[{manifest['map_index']}] is missing: the XCom object "
                f"store lost it or the run's XComs were purged; rerun the upstream task"
            ) from None
        yield value["records"], value.get("stamp") or None
