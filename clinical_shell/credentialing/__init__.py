"""Credentialing: restricted techniques and surgical grades, applications, committee votes, privileges."""
