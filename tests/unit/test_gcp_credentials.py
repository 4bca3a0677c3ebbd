"""GCP credentials: key file, Airflow connection, Application Default Credentials, and clear errors.

The key files are real service-account keys (fresh RSA keys); nothing here touches the network
(the metadata-server probe of ADC is pointed at a closed local port).
"""

from __future__ import annotations

import json
import os

import pytest
from servers.gcp import make_service_account_key

from airflow_cloudmarker.gcp.credentials import GCPCredentialsError, load_credentials

TOKEN_URI = "http://127.0.0.1:9/token"


@pytest.fixture(scope="module")
def key_info(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "key.json"
    info, _ = make_service_account_key(path, TOKEN_URI, email="reader@p.iam.gserviceaccount.com")
    return info


@pytest.fixture
def no_adc(monkeypatch, tmp_path):
    """No GOOGLE_APPLICATION_CREDENTIALS, no gcloud config, no GCE metadata server."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    from google.auth.compute_engine import _metadata

    # google-auth reads NO_GCE_CHECK when it is first imported; set the value it read, and point the
    # metadata probe (read at call time) at a closed local port in case anything still probes.
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")


def assert_no_key_material(text: str, info: dict) -> None:
    assert "PRIVATE KEY" not in text and info["private_key_id"] not in text
    assert info["private_key"].splitlines()[1] not in text


def test_relative_key_file_path_is_resolved_against_the_current_directory(key_info, tmp_path, monkeypatch):
    (tmp_path / "keyfile.json").write_text(json.dumps(key_info))
    monkeypatch.chdir(tmp_path)
    loaded = load_credentials("keyfile.json")
    assert loaded.client_email == "reader@p.iam.gserviceaccount.com"
    assert loaded.credentials.service_account_email == "reader@p.iam.gserviceaccount.com"
    assert loaded.credentials._token_uri == TOKEN_URI
    assert_no_key_material(loaded.source, key_info)


def test_missing_key_file_names_the_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GCPCredentialsError) as err:
        load_credentials("keyfile.json")
    message = str(err.value)
    assert "key_file_path" in message and "keyfile.json" in message and str(tmp_path / "keyfile.json") in message
    assert "does not exist" in message
    assert isinstance(err.value.__cause__, FileNotFoundError)  # the cause is kept: it holds no key material


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file_names_the_path(key_info, tmp_path):
    path = tmp_path / "locked.json"
    path.write_text(json.dumps(key_info))
    path.chmod(0)
    with pytest.raises(GCPCredentialsError, match=r"cannot read the service-account key file .*locked\.json"):
        load_credentials(str(path))


@pytest.mark.parametrize(
    "content, expected",
    [
        ("not json {", "is not JSON"),
        ('{"type": "authorized_user"}', "is not a service-account key"),
        ('{"type": "service_account", "client_email": "x@y"}', "lacks private_key, token_uri"),
    ],
)
def test_malformed_key_files(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(GCPCredentialsError, match=expected) as err:
        load_credentials(str(path))
    assert str(path) in str(err.value)


def test_corrupt_private_key_error_does_not_quote_the_key(key_info, tmp_path):
    broken = dict(
        key_info, private_key=key_info["private_key"].replace("A", "B", 40)[:-60] + "\n-----END PRIVATE KEY-----\n"
    )
    path = tmp_path / "corrupt.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(GCPCredentialsError, match="cannot be loaded") as err:
        load_credentials(str(path))
    assert_no_key_material(str(err.value), broken)


def test_directory_instead_of_key_file(tmp_path):
    with pytest.raises(GCPCredentialsError, match="is a directory"):
        load_credentials(str(tmp_path))


def test_connection_with_keyfile_dict_json_string(key_info, monkeypatch):
    conn = {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(key_info), "project": "x"}}
    monkeypatch.setenv("AIRFLOW_CONN_GCP_AUDIT", json.dumps(conn))
    loaded = load_credentials(conn_id="gcp_audit")
    assert loaded.client_email == key_info["client_email"]
    assert "gcp_audit" in loaded.source
    assert_no_key_material(loaded.source, key_info)


def test_connection_with_legacy_prefixed_key_path(key_info, tmp_path, monkeypatch):
    path = tmp_path / "k.json"
    path.write_text(json.dumps(key_info))
    conn = {"conn_type": "google_cloud_platform", "extra": {"extra__google_cloud_platform__key_path": str(path)}}
    monkeypatch.setenv("AIRFLOW_CONN_GCP_LEGACY", json.dumps(conn))
    assert load_credentials(conn_id="gcp_legacy").client_email == key_info["client_email"]


def test_connection_key_path_missing_names_connection_and_path(tmp_path, monkeypatch):
    conn = {"conn_type": "google_cloud_platform", "extra": {"key_path": str(tmp_path / "gone.json")}}
    monkeypatch.setenv("AIRFLOW_CONN_GCP_GONE", json.dumps(conn))
    with pytest.raises(GCPCredentialsError, match=r"'gcp_gone'.*key_path.*gone\.json.*does not exist"):
        load_credentials(conn_id="gcp_gone")


def test_unknown_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GCP_NOWHERE", raising=False)
    with pytest.raises(GCPCredentialsError, match="'gcp_nowhere' does not exist"):
        load_credentials(conn_id="gcp_nowhere")


def test_application_default_credentials_from_environment(key_info, tmp_path, monkeypatch, no_adc):
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(key_info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    loaded = load_credentials()
    assert loaded.source == "ADC" and loaded.client_email == key_info["client_email"]


def test_no_credentials_at_all_is_one_clear_error(no_adc):
    with pytest.raises(GCPCredentialsError, match="neither key_file_path nor conn_id is set"):
        load_credentials()
