"""Every write of credentialing (applications, votes, decisions, privileges, catalog), audited;
and the checks scheduling asks (`check_privilege`, `institution_licensed`)."""

from clinical_shell.credentialing.checks import (
    PrivilegeCheck,
    check_privilege,
    institution_licensed,
)

__all__ = ["PrivilegeCheck", "check_privilege", "institution_licensed"]
