"""Restricted techniques and surgical grades: applications, committee votes, privileges."""
