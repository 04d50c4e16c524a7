from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "clinical_shell.audit"
    label = "audit"
    verbose_name = "审计 / Audit"
