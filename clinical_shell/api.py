"""The `/api/v1` NinjaAPI: mounts each app's `router`; errors are RFC 9457 problem details."""

import importlib

from ninja import NinjaAPI

from clinical_shell.accounts.auth import BearerTokenAuth, SessionAuthWithCsrf
from clinical_shell.errors import install_problem_handlers

api = NinjaAPI(
    title="Osteon clinical shell API",
    version="1",
    description="楚雄骨科区域网络临床平台 / Chuxiong regional orthopedic network clinical shell",
    auth=[BearerTokenAuth(), SessionAuthWithCsrf()],
    urls_namespace="api-v1",
)
install_problem_handlers(api)

# (prefix, module holding `router`); an app whose api module is not written yet is skipped, so
# apps developed in parallel (imaging) plug in by creating their api.py
_ROUTERS: list[tuple[str, str]] = [
    ("/network", "clinical_shell.network.api"),
    ("/accounts", "clinical_shell.accounts.api"),
    ("/patients", "clinical_shell.records.api"),
    ("/imaging", "clinical_shell.imaging.api"),
    ("/stations", "clinical_shell.stations.api"),
    ("/training", "clinical_shell.training.api"),
    ("/credentialing", "clinical_shell.credentialing.api"),
    ("/scheduling", "clinical_shell.scheduling.api"),
    ("/notifications", "clinical_shell.notifications.api"),
    ("/referrals", "clinical_shell.referrals.api"),
    # its own prefix: "/referrals/{referral_id}" would take "/referrals/consultations"
    ("/consultations", "clinical_shell.referrals.consult_api"),
    ("/quality", "clinical_shell.quality.api"),
    ("/planning", "clinical_shell.planning.api"),
    ("/planning", "clinical_shell.planning.rehearsal_api"),
    ("/live", "clinical_shell.live.api"),
    ("/live", "clinical_shell.live.session_api"),
    ("/administration", "clinical_shell.administration.api"),
    ("/imaging-reports", "clinical_shell.imaging.report_api"),
]

for _prefix, _module in _ROUTERS:
    try:
        _router_module = importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise  # the module exists but something it imports is missing: a real error
        continue
    api.add_router(_prefix, _router_module.router)
