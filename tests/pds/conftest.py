"""Session fixtures: a real Bluesky PDS and PLC directory on 127.0.0.1 (see pds_servers.py and docs/testing.md)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest
from atproto import Client, models
from pds_servers import (
    ACCOUNT_PASSWORD,
    LocalPds,
    PdsAccount,
    free_port,
    install_node_side,
    node_env,
    outbound_fetches,
    start_server,
    stop_server,
)


@pytest.fixture(scope="session")
def local_pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPds]:
    """PLC then PDS, both on 127.0.0.1, stopped when the session ends (also when a test failed)."""
    install_node_side()
    root = tmp_path_factory.mktemp("pds")
    plc_port, pds_port = free_port(), free_port()
    plc_url = f"http://127.0.0.1:{plc_port}"
    admin_password = secrets.token_urlsafe(16)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_server("plc.js", node_env(PLC_PORT=str(plc_port)), root / "plc.log", f"{plc_url}/_health"))
        pds_env = node_env(
            PDS_PORT=str(pds_port),
            PDS_HOSTNAME="localhost",
            PDS_DEV_MODE="true",
            PDS_INVITE_REQUIRED="false",
            PDS_SERVICE_HANDLE_DOMAINS=".test",
            PDS_DATA_DIRECTORY=str(root),
            PDS_BLOBSTORE_DISK_LOCATION=str(root / "blobs"),
            PDS_BLOBSTORE_DISK_TMP_LOCATION=str(root / "blobs-tmp"),
            # a host name, not 127.0.0.1: the PDS's DID resolver refuses IP-address hosts (SSRF guard)
            PDS_DID_PLC_URL=f"http://localhost:{plc_port}",
            PDS_JWT_SECRET=secrets.token_hex(16),
            PDS_ADMIN_PASSWORD=admin_password,
            PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=secrets.token_hex(32),
            PDS_CRAWLERS="",
            PDS_RATE_LIMITS_ENABLED="false",
            LOG_ENABLED="true",
            LOG_LEVEL="info",
        )
        pds_url = f"http://127.0.0.1:{pds_port}"
        procs.append(start_server("pds.js", pds_env, root / "pds.log", f"{pds_url}/xrpc/_health"))
        yield LocalPds(url=pds_url, plc_url=plc_url, admin_password=admin_password, logs=root)
    finally:
        for proc in reversed(procs):
            stop_server(proc)
    # The PDS logs every outbound fetch; the local PLC must have been the only host it asked.
    strays = outbound_fetches(root / "pds.log", allowed=f"http://localhost:{plc_port}/")
    assert not strays, f"the PDS fetched from outside the local PLC: {strays}"


@pytest.fixture
def pds_account(local_pds: LocalPds) -> PdsAccount:
    """A new account (createAccount) with an app password (createAppPassword), made with the atproto SDK."""
    handle = f"nova{secrets.token_hex(4)}.test"
    client = Client(base_url=local_pds.url)
    created = client.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle=handle, email=f"{handle}@example.com", password=ACCOUNT_PASSWORD
        )
    )
    client.login(handle, ACCOUNT_PASSWORD, fetch_bsky_profile=False)  # no app view here to fetch a profile from
    app_password = client.com.atproto.server.create_app_password(
        models.ComAtprotoServerCreateAppPassword.Data(name="AInfluencer")
    )
    return PdsAccount(
        did=created.did, handle=created.handle, password=ACCOUNT_PASSWORD, app_password=app_password.password
    )
