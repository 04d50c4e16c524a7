"""CT input: reading DICOM series into HU volumes, and generating CT phantoms with known truth."""
