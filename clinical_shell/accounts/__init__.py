"""Accounts app: sign-in with lockout, idle timeout, TOTP and hashed machine API tokens."""
