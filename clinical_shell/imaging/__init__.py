"""Imaging app: DICOM studies, viewing and simulation-case building."""
