"""WSGI entry point for production servers (gunicorn clinical_shell.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
application = get_wsgi_application()

from clinical_shell.keyfiles import require_configured_secrets  # noqa: E402

# no development default: a server without its secrets does not start
require_configured_secrets()
