"""Issue 3's acceptance: Google's own client libraries against the emulator, no rollsafe."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import EXAMPLES


def test_walkthrough_with_only_google_clients(emulator: str) -> None:
    script = EXAMPLES / "google-clients" / "walkthrough.py"
    assert "import rollsafe" not in script.read_text()
    assert "from rollsafe" not in script.read_text()
    # google-auth finds the metadata server (and so ID tokens) where these point
    host = emulator.removeprefix("http://")
    env = {**os.environ, "GCE_METADATA_HOST": host, "GCE_METADATA_IP": host}
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    result = subprocess.run(
        [sys.executable, str(script), emulator],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")
    # the secret reached the service: the fingerprint of version 2, never the value
    assert "second-token-value" not in result.stdout
