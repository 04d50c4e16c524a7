"""Quality indicators as data, computed in the database, thresholds, warnings, dashboards."""
