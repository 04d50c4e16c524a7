"""WSGI entry point for production servers (gunicorn clinical_shell.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
application = get_wsgi_application()
