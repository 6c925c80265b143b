"""``meterplane export`` in a subprocess: backfill with --from/--to, then status."""

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from meterplane.settings import Settings
from tests.export.conftest import Setup, put_target


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "METERPLANE_DATABASE_URL": settings.database_url,
        "METERPLANE_SECRET_KEY": settings.secret_key or "",
        "METERPLANE_EXPORT_LOCAL_DIR": str(settings.export_local_dir),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "meterplane.cli.main", "export", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_backfill_and_status(client: TestClient, settings: Settings, usage: Setup) -> None:
    provider = usage.tenant.provider_id
    put_target(client, usage.tenant, None, kind="local")
    run = run_cli(
        settings,
        "run",
        "--provider",
        provider,
        "--from",
        "2026-10-20T09:00:00Z",
        "--to",
        "2026-10-20T11:00:00Z",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["hours_exported"] == 2 and report["error"] is None
    root = Path(settings.export_local_dir) / provider
    assert (root / "_meterplane" / "last_success.json").exists()
    status = run_cli(settings, "status", "--provider", provider, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["exported_through"] == "2026-10-20T11:00:00Z"
