"""Re-exports: API tokens live in `accounts.tokens`, the sign-in rules in `accounts.signin`."""

from clinical_shell.accounts.signin import AccountLockedError, SignInError, check_sign_in
from clinical_shell.accounts.tokens import (
    TOKEN_PREFIX,
    IssuedToken,
    hash_token,
    user_for_token,
)
from clinical_shell.accounts.tokens import issue as issue_api_token
from clinical_shell.accounts.tokens import revoke as revoke_api_token

# these names stay importable from here
__all__ = [
    "TOKEN_PREFIX",
    "AccountLockedError",
    "IssuedToken",
    "SignInError",
    "check_sign_in",
    "hash_token",
    "issue_api_token",
    "revoke_api_token",
    "user_for_token",
]
