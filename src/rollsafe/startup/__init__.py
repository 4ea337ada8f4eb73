"""The start-up guard inside the service: the manifest's rules, checked before it serves.

::

    app = FastAPI()
    StartupGuard.from_env().install(app)

Cheap to import (it runs in every service at boot): no google-cloud package, no CLI, no
emulator, no web framework until ``install()``; pydantic and YAML load only when the rules
come from a manifest file (``ROLLSAFE_MANIFEST``) rather than ``ROLLSAFE_CONTRACT``.
See docs/startup.md.
"""

from rollsafe.startup._process import EXIT_CODE
from rollsafe.startup.config import MODE_VAR, StartupMode
from rollsafe.startup.contract import (
    CONTRACT_VAR,
    ContractError,
    ContractKey,
    JwtSecretSpec,
    ServiceContract,
    contract_from_service,
    load_contract,
)
from rollsafe.startup.guard import StartupGuard
from rollsafe.startup.report import (
    CheckResult,
    DeterministicStartupError,
    StartupCheckError,
    StartupProblem,
    StartupReport,
)
from rollsafe.startup.sequence import DEFAULT_PHASES, StartupSequence
from rollsafe.startup.signing import JwtSecret, JwtSecretError, jwt_secret

__all__ = [
    "CONTRACT_VAR",
    "DEFAULT_PHASES",
    "EXIT_CODE",
    "MODE_VAR",
    "CheckResult",
    "ContractError",
    "ContractKey",
    "DeterministicStartupError",
    "JwtSecret",
    "JwtSecretError",
    "JwtSecretSpec",
    "ServiceContract",
    "StartupCheckError",
    "StartupGuard",
    "StartupMode",
    "StartupProblem",
    "StartupReport",
    "StartupSequence",
    "contract_from_service",
    "jwt_secret",
    "load_contract",
]
