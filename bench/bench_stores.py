"""Benchmark: 200,000 mock records into EsStore, MongoDBStore and SplunkHECStore (local test servers).

For each store it prints records/s and the number of requests, then the same figures for a bare
loop that sends the same batches (built beforehand, not timed) with the same client library:
``Elasticsearch.bulk``, pymongo ``bulk_write``, ``requests.Session.post``. The store's own cost
(encoding, deterministic ids, buffering, response checks) is the difference. Target: the store at
least 80% of the bare loop's throughput.

    python bench/bench_stores.py [--records N] [--only es,mongo,splunk]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cm-bench-"))

import orjson  # noqa: E402

from airflow_cloudmarker import records as rec  # noqa: E402
from airflow_cloudmarker.clouds.mockcloud import MockCloud  # noqa: E402
from airflow_cloudmarker.stores import _documents as docs  # noqa: E402


def _serve(kind: str, port: int) -> None:
    """Run a test server in its own process, so it does not share the benchmark's GIL."""
    if kind == "es":
        from servers.elasticsearch import EsServer

        EsServer(port=port).start()
    else:
        from servers.splunk import HecServer

        HecServer(port=port, tls=False).start()
    while True:
        time.sleep(3600)


def server_process(kind: str):
    import multiprocessing

    from servers.net import free_port

    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(kind, port), daemon=True)
    process.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            stats(port)
            return process, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the {kind} test server did not start")


def stats(port: int) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_test/stats", timeout=5) as response:
        return orjson.loads(response.read())


def mock_records(n: int) -> list[dict]:
    """Records as a store task receives them: MockCloud output with origin and target stamps."""
    origin = rec.origin_stamp("mockaudit", "20260101_000000", "mockcloud", "MockCloud", "cloud")
    target = rec.target_stamp("mockaudit", "store", "Store", "store")
    return [rec.stamp(rec.stamp(r, origin), target) for r in MockCloud(record_count=n).read()]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def report(name: str, n: int, store_s: float, store_requests: int, bare_s: float, bare_requests: int) -> float:
    ratio = (n / store_s) / (n / bare_s)
    print(
        f"{name:15s} store: {n / store_s:10,.0f} records/s {store_requests:6d} requests   "
        f"bare loop: {n / bare_s:10,.0f} records/s {bare_requests:6d} requests   store/bare: {ratio:.0%}"
    )
    return ratio


def write_all(store, items: list[dict]) -> None:
    """What the store task does with its records: write each, then done()."""
    for item in items:
        store.write(item)
    store.done()


def bench_es(items: list[dict]) -> float:
    from elasticsearch import Elasticsearch

    from airflow_cloudmarker.stores.esstore import EsStore

    process, port = server_process("es")
    try:
        store = EsStore(host="127.0.0.1", port=port, index="store")

        store_s = timed(lambda: write_all(store, items))
        after_store = stats(port)
        assert after_store["docs"]["store"] == len(items)
        # The same batches: the NDJSON bodies of the same size, built before the clock starts.
        bodies, body, size = [], [], 0
        for item in items:
            doc_id, source = docs.encode_with_id(item)
            action = orjson.dumps({"index": {"_index": "bare", "_id": doc_id}})
            if body and size + len(action) + len(source) + 2 > 5_000_000:
                bodies.append(b"\n".join(body) + b"\n")
                body, size = [], 0
            body += [action, source]
            size += len(action) + len(source) + 2
        bodies.append(b"\n".join(body) + b"\n")
        client = Elasticsearch(f"http://127.0.0.1:{port}")
        bare_s = timed(lambda: [client.bulk(operations=b) for b in bodies])
        after_bare = stats(port)
        assert after_bare["docs"]["bare"] == len(items)
        bare_requests = after_bare["requests"] - after_store["requests"]
        return report("EsStore", len(items), store_s, after_store["requests"], bare_s, bare_requests)
    finally:
        process.kill()


def bench_mongo(items: list[dict]) -> float:
    import pymongo
    from servers.mongo import start_nx, stop_nx

    from airflow_cloudmarker.stores.mongodbstore import MongoDBStore

    proc, port = start_nx(Path(tempfile.mkdtemp(prefix="cm-bench-nx-")))
    try:
        store = MongoDBStore(host="127.0.0.1", port=port, collection="store")

        store_s = timed(lambda: write_all(store, items))
        client = pymongo.MongoClient("127.0.0.1", port)
        assert client.cloudmarker.store.count_documents({}) == len(items)
        batches = []
        for start in range(0, len(items), 1000):
            ops = []
            for item in items[start : start + 1000]:
                doc_id, encoded = docs.encode_with_id(item)
                ops.append(pymongo.ReplaceOne({"_id": doc_id}, {**orjson.loads(encoded), "_id": doc_id}, upsert=True))
            batches.append(ops)
        collection = client.cloudmarker.bare
        bare_s = timed(lambda: [collection.bulk_write(b, ordered=False) for b in batches])
        assert collection.count_documents({}) == len(items)
        client.close()
        return report("MongoDBStore", len(items), store_s, store.requests, bare_s, len(batches))
    finally:
        stop_nx(proc)


def bench_splunk(items: list[dict]) -> float:
    import requests

    from airflow_cloudmarker.stores.splunkhecstore import SplunkHECStore

    process, port = server_process("splunk")
    try:
        uri = f"http://127.0.0.1:{port}/services/collector"
        store = SplunkHECStore(uri=uri, token="token123", index="main")

        store_s = timed(lambda: write_all(store, items))
        after_store = stats(port)
        assert after_store["events"] == len(items)
        bodies = [
            b"\n".join(docs.encode({"index": "main", "sourcetype": "json", "event": r}) for r in items[i : i + 1000])
            for i in range(0, len(items), 1000)
        ]
        session = requests.Session()
        session.headers["Authorization"] = "Splunk token123"
        bare_s = timed(lambda: [session.post(uri, data=b).raise_for_status() for b in bodies])
        after_bare = stats(port)
        assert after_bare["events"] == 2 * len(items)
        bare_requests = after_bare["requests"] - after_store["requests"]
        return report("SplunkHECStore", len(items), store_s, after_store["requests"], bare_s, bare_requests)
    finally:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--only", default="es,mongo,splunk")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    # In a task Airflow and the provider hooks are already imported: keep that one-time cost out of the timings.
    import airflow.providers.elasticsearch.hooks.elasticsearch  # noqa: F401
    import airflow.providers.mongo.hooks.mongo  # noqa: F401

    import airflow_cloudmarker.hooks.splunk  # noqa: F401

    items = mock_records(args.records)
    print(f"{args.records:,} mock records per store (local test servers on 127.0.0.1)")
    benches = {"es": bench_es, "mongo": bench_mongo, "splunk": bench_splunk}
    ratios = {name: benches[name](items) for name in args.only.split(",")}
    print(
        "target >= 80% of the bare loop:", ", ".join(f"{k} {'ok' if v >= 0.8 else 'MISSED'}" for k, v in ratios.items())
    )


if __name__ == "__main__":
    main()
