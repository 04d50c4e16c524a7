from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "clinical_shell.imaging"
    label = "imaging"
    verbose_name = "影像 / Imaging"
