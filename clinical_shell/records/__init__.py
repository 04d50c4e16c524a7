"""Records app: the regional patient index, encounters, diagnoses, procedures, documents."""
