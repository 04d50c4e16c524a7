from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "clinical_shell.records"
    label = "records"
    verbose_name = "病历 / Records"
