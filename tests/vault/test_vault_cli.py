"""`ainfluencer provenance init|verify` and `ainfluencer models pull` (offline: a clear error, no traceback)."""

from __future__ import annotations

import stat

import pytest
from typer.testing import CliRunner

from ainfluencer.cli import app

runner = CliRunner()
pytestmark = pytest.mark.nodb


def test_provenance_init_then_verify(tmp_path, monkeypatch):
    pytest.importorskip("c2pa")
    from ainfluencer.config import Settings
    from ainfluencer.media.provenance.c2pa_sign import sign_file
    from ainfluencer.services.vault import provenance_dir
    from vault.conftest import image_bytes

    monkeypatch.setenv("AINF_DATA_DIR", str(tmp_path / "data"))
    r = runner.invoke(app, ["provenance", "init"])
    assert r.exit_code == 0, r.output
    folder = provenance_dir(Settings())
    for name in ("c2pa-ca.pem", "c2pa-ca.key", "c2pa-signer.pem", "c2pa-signer.key"):
        assert str(folder / name) in r.stdout
    assert stat.S_IMODE((folder / "c2pa-signer.key").stat().st_mode) == 0o600
    again = runner.invoke(app, ["provenance", "init"])
    assert again.exit_code == 1 and "already exists" in again.output

    from ainfluencer.media.provenance.c2pa_sign import SigningCredentials

    src = tmp_path / "in.png"
    src.write_bytes(image_bytes())
    signed = sign_file(src, tmp_path / "out.png", credentials=SigningCredentials.load(folder))
    ok = runner.invoke(app, ["provenance", "verify", str(signed)])
    assert ok.exit_code == 0 and '"valid": true' in ok.stdout
    bad = runner.invoke(app, ["provenance", "verify", str(src)])
    assert bad.exit_code == 1 and "no C2PA manifest" in bad.stdout


def test_models_pull_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("AINF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = runner.invoke(app, ["models", "pull", "stabilityai/sd-turbo"])
    assert r.exit_code == 1
    assert "Error:" in r.output and "models pull" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
