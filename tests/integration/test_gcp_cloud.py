"""GCPCloud with the real google-api-python-client over real HTTP against tests/servers/gcp.py.

Covers what the audit depends on: every project (pages of projects.list), one aggregatedList per
project whatever the number of zones, pagination of every list, the zone filter, throttling
(429 then success), a project whose Compute API is disabled (reported, others unaffected),
credentials the token endpoint rejects, and that no key material reaches a record.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest
from servers.gcp import GCPServer, World, make_world

from airflow_cloudmarker.clouds.gcpcloud import GCPCloud


def read_all(cloud: GCPCloud) -> list[dict]:
    """What the audit DAG does: list the shards, then read each (one mapped task each)."""
    return [record for shard in cloud.shards() for record in cloud.read(shard)]


def kinds(records: list[dict]) -> Counter:
    return Counter(r["ext"]["record_type"] for r in records)


@pytest.fixture
def serve(tmp_path):
    """Start a server for a world; return (server, key path)."""
    servers = []

    def start(world: World, latency: float = 0.0):
        server = GCPServer(world, latency).__enter__()
        servers.append(server)
        key_path = tmp_path / "key.json"
        server.make_key(key_path)
        return server, str(key_path)

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def test_every_project_and_zone_with_pagination(serve):
    world = make_world(projects=5, firewalls=5, instances=7, zones=3, page_size=2)
    world.add_project("being-deleted", 999, state="DELETE_REQUESTED")
    server, key = serve(world)
    cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)
    shards = cloud.shards()
    assert shards == [f"proj-{i:04d}" for i in range(5)]  # 6 projects over 3 pages; inactive left out
    records = [record for shard in shards for record in cloud.read(shard)]
    assert kinds(records) == {"project": 5, "firewall": 25, "firewall_rule": 25, "instance": 35}
    # Pages followed: 3 of projects.list; per project ceil(5/2)=3 firewall pages and ceil(7/2)=4 aggregated pages.
    assert len([c for c in server.api_calls() if c[1].startswith("/v1/projects")]) == 3 + 5  # list + get
    assert len(server.api_calls("/global/firewalls")) == 5 * 3
    assert len(server.api_calls("/aggregated/instances")) == 5 * 4
    assert server.api_calls("/zones/") == []  # never one call per zone
    names = {(r["ext"]["project_id"], r["ext"]["zone"], r["raw"]["name"]) for r in records if r["raw"].get("zone")}
    expected = {
        (pid, zone, i["name"]) for pid, zones in world.instances.items() for zone, found in zones.items() for i in found
    }
    assert names == expected


def test_record_shapes_and_no_key_material(serve, tmp_path):
    world = World()
    world.add_project("alpha", 11)
    world.add_firewall("alpha", "ssh", sourceRanges=["0.0.0.0/0"], allowed=[{"IPProtocol": "tcp", "ports": ["22"]}])
    world.add_instance("alpha", "europe-west1-c", "web-1")
    server, key = serve(world)
    records = read_all(GCPCloud(key_file_path=key, api_endpoints=server.endpoints))
    by_type = {r["ext"]["record_type"]: r for r in records}
    base = {
        "cloud_type": "gcp",
        "project_id": "alpha",
        "project_name": "Project alpha",
        "client_email": "auditor@test-project.iam.gserviceaccount.com",
    }
    assert by_type["project"]["raw"] == world.projects[0]
    assert by_type["project"]["ext"] == {**base, "zone": None, "record_type": "project"}
    assert by_type["firewall"]["raw"] == world.firewalls["alpha"][0]
    assert by_type["firewall"]["com"] == {"cloud_type": "gcp", "reference": world.firewalls["alpha"][0]["selfLink"]}
    assert by_type["firewall_rule"]["com"]["destination_ports"] == ["22"]
    instance = by_type["instance"]
    assert instance["raw"] == world.instances["alpha"]["europe-west1-c"][0]
    assert instance["ext"] == {**base, "zone": "europe-west1-c", "record_type": "instance"}
    assert instance["com"] == {"cloud_type": "gcp", "record_type": "compute", "reference": instance["raw"]["selfLink"]}
    with open(key) as handle:
        key_info = json.load(handle)
    text = json.dumps(records)
    assert "PRIVATE KEY" not in text and key_info["private_key_id"] not in text


def test_calls_per_project_do_not_grow_with_zones(serve):
    counts = []
    for zones in (1, 20):
        server, key = serve(make_world(projects=2, firewalls=3, instances=40, zones=zones))
        records = read_all(GCPCloud(key_file_path=key, api_endpoints=server.endpoints))
        assert kinds(records)["instance"] == 80
        assert len({r["ext"]["zone"] for r in records if r["ext"]["record_type"] == "instance"}) == zones
        counts.append(len(server.api_calls()))
    assert counts[0] == counts[1] == 1 + 2 * 3  # projects.list + (get, firewalls, aggregatedList) per project


def test_a_projects_three_calls_run_at_once(serve):
    """projects.get, firewalls.list and aggregatedList of one project are in flight together, not one by one."""
    world = make_world(projects=1, firewalls=2, instances=3, zones=2)
    server, key = serve(world, latency=0.3)
    cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)
    (shard,) = cloud.shards()
    server.peak_in_flight = 0
    records = list(cloud.read(shard))
    assert kinds(records) == {"project": 1, "firewall": 2, "firewall_rule": 2, "instance": 3}
    assert server.peak_in_flight == 3
    assert len(server.api_calls()) == 1 + 3


def test_pages_of_both_collections_each_arrive_once_in_order(serve):
    """Fetched a page ahead on the shared pool: still every page once, records in the order of the pages."""
    world = make_world(projects=2, firewalls=7, instances=9, zones=3, page_size=2)
    server, key = serve(world, latency=0.01)
    cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)
    for shard in cloud.shards():
        records = list(cloud.read(shard))
        firewalls = [r["raw"]["name"] for r in records if r["ext"]["record_type"] == "firewall"]
        assert firewalls == [f["name"] for f in world.firewalls[shard]]
        instances = [r["raw"]["name"] for r in records if r["ext"]["record_type"] == "instance"]
        in_pages = [i["name"] for zone in world.zones for i in world.instances[shard].get(zone, [])]
        assert instances == in_pages
    assert len(server.api_calls("/global/firewalls")) == 2 * 4
    assert len(server.api_calls("/aggregated/instances")) == 2 * 5


def test_a_project_the_account_cannot_read_is_skipped_quietly(serve, caplog):
    """projects.get refused: no records and one WARNING, though its compute calls ran (and failed) meanwhile."""
    server, key = serve(make_world(projects=1, firewalls=1, instances=1, zones=1))
    cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)
    with caplog.at_level(logging.INFO, logger="airflow_cloudmarker.clouds.gcpcloud"):
        assert list(cloud.read("not-ours")) == []
        assert kinds(list(cloud.read("proj-0000")))["project"] == 1
        cloud.done()
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [line.split(":")[0] for line in lines[:-1]] == ["GCP project not-ours skipped"]
    assert "read 1 projects, skipped 1 (not-ours)" in lines[-1]


def test_zone_param_reads_only_that_zone(serve):
    world = make_world(projects=2, firewalls=1, instances=9, zones=3, page_size=2)
    server, key = serve(world)
    zone = world.zones[1]
    records = read_all(GCPCloud(key_file_path=key, zone=zone, api_endpoints=server.endpoints))
    instances = [r for r in records if r["ext"]["record_type"] == "instance"]
    assert {r["ext"]["zone"] for r in instances} == {zone} and len(instances) == 2 * 3
    assert server.api_calls("/aggregated/") == []
    assert len(server.api_calls(f"/zones/{zone}/instances")) == 2 * 2  # 3 instances per page of 2


def test_throttled_calls_are_retried(serve, caplog):
    world = make_world(projects=2, firewalls=2, instances=2, zones=2)
    world.throttle = {"/v1/projects": 1, "/global/firewalls": 1}
    server, key = serve(world)
    records = read_all(GCPCloud(key_file_path=key, api_endpoints=server.endpoints))
    assert kinds(records) == {"project": 2, "firewall": 4, "firewall_rule": 4, "instance": 4}
    assert [c[2] for c in server.api_calls("/global/firewalls")] == [429, 200, 200]
    assert world.throttle == {"/v1/projects": 0, "/global/firewalls": 0}


def test_project_with_compute_api_disabled_is_reported_and_skipped(serve, caplog):
    world = make_world(projects=3, firewalls=2, instances=3, zones=2)
    world.compute_disabled.add("proj-0001")
    server, key = serve(world)
    cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)
    with caplog.at_level(logging.INFO, logger="airflow_cloudmarker.clouds.gcpcloud"):
        records = read_all(cloud)
        cloud.done()
    assert Counter((r["ext"]["project_id"], r["ext"]["record_type"]) for r in records) == {
        ("proj-0000", "project"): 1,
        ("proj-0000", "firewall"): 2,
        ("proj-0000", "firewall_rule"): 2,
        ("proj-0000", "instance"): 3,
        ("proj-0001", "project"): 1,
        ("proj-0002", "project"): 1,
        ("proj-0002", "firewall"): 2,
        ("proj-0002", "firewall_rule"): 2,
        ("proj-0002", "instance"): 3,
    }
    skipped = next(r for r in records if r["ext"]["project_id"] == "proj-0001")
    assert skipped["ext"]["compute_error"].startswith("HTTP 403 accessNotConfigured: Compute Engine API has not")
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len([line for line in lines if line.startswith("GCP project proj-0001 skipped")]) == 1
    assert "\n" not in lines[0]
    assert "read 2 projects, skipped 1 (proj-0001)" in lines[-1]


def test_unthreaded_and_threaded_read_without_shards_agree(serve):
    world = make_world(projects=6, firewalls=2, instances=5, zones=3, page_size=2)
    world.compute_disabled.add("proj-0003")
    server, key = serve(world)
    one = list(GCPCloud(key_file_path=key, api_endpoints=server.endpoints, threads=1).read())
    many = list(GCPCloud(key_file_path=key, api_endpoints=server.endpoints, threads=4).read())
    key_of = lambda r: (r["ext"]["record_type"], r["ext"]["project_id"], r["raw"].get("name"), r["com"].get("protocol"))  # noqa: E731
    assert sorted(map(key_of, one)) == sorted(map(key_of, many)) and len(one) == 6 + 5 * (2 + 2 + 5)


def test_many_projects_are_one_shard_each_and_max_projects_limits_them(serve):
    """The framework packs shards into groups (contract.shard_groups): GCPCloud no longer batches them itself."""
    server, key = serve(make_world(projects=5, firewalls=1, instances=1, zones=1))
    cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)
    assert cloud.shards() == [f"proj-{i:04d}" for i in range(5)]
    assert kinds(read_all(cloud))["project"] == 5
    assert GCPCloud(key_file_path=key, api_endpoints=server.endpoints, _max_projects=2).shards() == [
        "proj-0000",
        "proj-0001",
    ]


def test_rejected_credentials_fail_loudly(serve, tmp_path):
    server, _ = serve(make_world(projects=1, firewalls=1, instances=1, zones=1))
    from servers.gcp import make_service_account_key

    unknown_key = tmp_path / "unknown.json"
    make_service_account_key(unknown_key, server.token_uri)  # signed by a key the server does not know
    from google.auth.exceptions import RefreshError

    with pytest.raises(RefreshError, match="invalid_grant"):
        GCPCloud(key_file_path=str(unknown_key), api_endpoints=server.endpoints).shards()
