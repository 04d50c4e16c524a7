"""Administration pages: users, institutions, departments, stations, the audit log."""
