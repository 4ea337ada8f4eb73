"""Issue 3's acceptance: Google's own client libraries against the emulator, no rollsafe."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import EXAMPLES


def test_walkthrough_with_only_google_clients(emulator: str) -> None:
    script = EXAMPLES / "google-clients" / "walkthrough.py"
    assert "import rollsafe" not in script.read_text()
    assert "from rollsafe" not in script.read_text()
    result = subprocess.run(
        [sys.executable, str(script), emulator],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")
    # the secret reached the service: the fingerprint of version 2, never the value
    assert "second-token-value" not in result.stdout
