from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "clinical_shell.network"
    label = "network"
    verbose_name = "医疗网络 / Network"
