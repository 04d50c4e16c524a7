"""The two questions scheduling asks: may this surgeon operate, may this institution do it.

Re-exported by `credentialing.services` (`check_privilege`, `institution_licensed`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from clinical_shell.credentialing.models import (
    InstitutionLicence,
    Privilege,
    Technique,
    TechniqueFiling,
)
from clinical_shell.network.models import Institution


@dataclass(frozen=True)
class PrivilegeCheck:
    ok: bool
    reason_code: str
    reason: str  # in the active language
    privilege_id: int | None = None


def check_privilege(
    surgeon: User,
    *,
    technique: str | None,
    grade: int | None,
    institution: Institution,
    on: date,
) -> PrivilegeCheck:
    """Whether `surgeon` holds a valid privilege at `institution` on `on` for the technique (a
    catalog code) and the surgical grade (1-4) of an operation; both are asked when both are
    given. A grade privilege covers operations of its grade and below. Expired, not yet
    started, suspended and revoked privileges do not count; the reason says which one it was."""
    if technique is None and grade is None:
        return PrivilegeCheck(True, "nothing_required", _("该手术无需授权"))
    found: PrivilegeCheck | None = None
    if grade is not None:
        if not 1 <= grade <= 4:
            return PrivilegeCheck(
                False, "unknown_grade", _("未知手术级别：%(grade)s") % {"grade": grade}
            )
        held = Privilege.objects.filter(
            surgeon_id=surgeon.pk, institution_id=institution.pk, grade__isnull=False
        )
        wanted = grade
        found = _pick(list(held), on, covers=lambda p: (p.grade or 0) >= wanted, grade=grade)
        if not found.ok:
            return found
    if technique is not None:
        known = Technique.objects.filter(code=technique).first()
        if known is None:
            return PrivilegeCheck(
                False, "unknown_technique", _("未知技术：%(code)s") % {"code": technique}
            )
        if known.category == Technique.Category.PROHIBITED:
            return PrivilegeCheck(
                False,
                "technique_prohibited",
                _("%(name)s 属于禁止类技术") % {"name": known.display_name},
            )
        held = Privilege.objects.filter(
            surgeon_id=surgeon.pk, institution_id=institution.pk, technique=known
        )
        found = _pick(list(held), on, covers=lambda p: True, technique=known)
    assert found is not None
    return found


def _pick(
    held: list[Privilege],
    on: date,
    *,
    covers: Callable[[Privilege], bool],
    grade: int | None = None,
    technique: Technique | None = None,
) -> PrivilegeCheck:
    """The valid privilege among `held` that covers the operation, or the most telling refusal:
    revoked, suspended, expired or not yet valid beats "grade too low" beats "none"."""
    what = (
        technique.display_name if technique is not None else _("%(grade)s级手术") % {"grade": grade}
    )
    covering = [p for p in held if covers(p)]
    for privilege in covering:
        if (
            privilege.status == Privilege.Status.ACTIVE
            and privilege.valid_from <= on <= privilege.valid_until
        ):
            return PrivilegeCheck(
                True, "ok", _("授权有效：%(what)s") % {"what": what}, privilege.pk
            )
    # most recent first: the refusal names the privilege the surgeon last held
    covering.sort(key=lambda p: (p.valid_until, p.pk), reverse=True)
    for privilege in covering:
        params = {"what": what, "reason": privilege.status_reason}
        if privilege.status == Privilege.Status.REVOKED:
            return PrivilegeCheck(
                False,
                "privilege_revoked",
                _("%(what)s 的授权已被撤销：%(reason)s") % params,
                privilege.pk,
            )
        if privilege.status == Privilege.Status.SUSPENDED:
            return PrivilegeCheck(
                False,
                "privilege_suspended",
                _("%(what)s 的授权已暂停：%(reason)s") % params,
                privilege.pk,
            )
        if privilege.valid_until < on:
            return PrivilegeCheck(
                False,
                "privilege_expired",
                _("%(what)s 的授权已于 %(date)s 过期，需重新认证")
                % {"what": what, "date": privilege.valid_until.isoformat()},
                privilege.pk,
            )
        if privilege.valid_from > on:
            return PrivilegeCheck(
                False,
                "privilege_not_started",
                _("%(what)s 的授权自 %(date)s 起生效")
                % {"what": what, "date": privilege.valid_from.isoformat()},
                privilege.pk,
            )
    if grade is not None and held:
        best = max(p.grade or 0 for p in held)
        return PrivilegeCheck(
            False,
            "grade_too_low",
            _("该医生在本机构最高授权为%(held)s级手术，本手术为%(grade)s级")
            % {"held": best, "grade": grade},
        )
    return PrivilegeCheck(
        False, "no_privilege", _("该医生在本机构没有 %(what)s 的授权") % {"what": what}
    )


def institution_licensed(
    institution: Institution, *, technique: str | None, grade: int | None
) -> PrivilegeCheck:
    """Whether `institution` may perform an operation of this grade and technique: its licence
    covers the grade, and its filing (备案) of the restricted technique is in force."""
    if grade is not None:
        licence = InstitutionLicence.objects.filter(institution_id=institution.pk).first()
        if licence is None:
            return PrivilegeCheck(
                False,
                "institution_not_graded",
                _("%(name)s 未登记手术分级目录") % {"name": institution.name},
            )
        if licence.max_surgical_grade < grade:
            return PrivilegeCheck(
                False,
                "institution_grade_too_low",
                _("%(name)s 最高可开展%(held)s级手术，本手术为%(grade)s级")
                % {"name": institution.name, "held": licence.max_surgical_grade, "grade": grade},
            )
    if technique is not None:
        known = Technique.objects.filter(code=technique).first()
        if known is None:
            return PrivilegeCheck(
                False, "unknown_technique", _("未知技术：%(code)s") % {"code": technique}
            )
        if known.category == Technique.Category.PROHIBITED:
            return PrivilegeCheck(
                False,
                "technique_prohibited",
                _("%(name)s 属于禁止类技术") % {"name": known.display_name},
            )
        if known.category != Technique.Category.HOSPITAL_MANAGED:
            filing = TechniqueFiling.objects.filter(
                institution_id=institution.pk, technique=known
            ).first()
            if filing is None:
                return PrivilegeCheck(
                    False,
                    "technique_not_filed",
                    _("%(inst)s 未备案限制类技术 %(name)s")
                    % {"inst": institution.name, "name": known.display_name},
                )
            if filing.status != TechniqueFiling.Status.FILED:
                return PrivilegeCheck(
                    False,
                    "technique_filing_suspended",
                    _("%(inst)s 的限制类技术 %(name)s 已暂停")
                    % {"inst": institution.name, "name": known.display_name},
                )
    return PrivilegeCheck(True, "ok", _("机构具备开展该手术的资质"))
