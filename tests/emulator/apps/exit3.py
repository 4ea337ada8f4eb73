"""A revision whose start-up validation fails: it logs why and exits with code 3."""

from __future__ import annotations

import sys

print("validating configuration")
print("SERVICE_SECRET: insufficient entropy: needs mixed case and digits", file=sys.stderr)
sys.exit(3)
