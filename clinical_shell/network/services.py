"""Writes to the network: institutions, people, memberships. Every write is audited."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from clinical_shell.accounts import passwords
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.network import chuxiong
from clinical_shell.network.models import Department, Institution, Membership, Person, Role


@transaction.atomic
def create_institution(
    *,
    actor: User | None,
    code: str,
    name: str,
    level: str,
    county: str,
    parent: Institution | None = None,
    name_en: str = "",
    longitude: float | None = None,
    latitude: float | None = None,
) -> Institution:
    if level not in Institution.Level.values:
        raise DomainError("bad_level", _("未知的机构级别：%(level)s") % {"level": level})
    if level != Institution.Level.CENTER and parent is None:
        raise DomainError("parent_required", _("县级和乡镇机构须有上级机构"))
    fields = {
        "name": name,
        "name_en": name_en,
        "level": level,
        "county": county,
        "parent_id": parent.pk if parent is not None else None,
        "longitude": longitude,
        "latitude": latitude,
    }
    institution = Institution.objects.create(code=code, **fields)
    # the institution page's history shows these as the values it started with
    audit.record(
        actor=actor,
        action="network.institution_create",
        target=institution,
        detail={"after": fields},
    )
    return institution


@transaction.atomic
def create_person(
    *,
    actor: User | None,
    username: str,
    password: str,
    full_name: str,
    title: str = Person.Title.NONE,
) -> Person:
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise DomainError(
            "username_taken", _("用户名已存在：%(username)s") % {"username": username}
        )
    # the password policy applies to every account; one an administrator chose is changed at
    # the first sign-in (actor None: the installer or a loader, not a person)
    passwords.validate(password)
    user = user_model.objects.create_user(username=username)
    passwords.set_initial_password(user, password, by_administrator=actor is not None)
    person = Person.objects.create(user=user, full_name=full_name, title=title)
    audit.record(actor=actor, action="network.person_create", target=person)
    return person


@transaction.atomic
def add_membership(
    *,
    actor: User | None,
    person: Person,
    institution: Institution,
    role: str,
    department: Department | None = None,
) -> Membership:
    if role not in Role.values:
        raise DomainError("bad_role", _("未知角色：%(role)s") % {"role": role})
    if department is not None and department.institution_id != institution.id:
        raise DomainError("department_elsewhere", _("科室不属于该机构"))
    membership, _created = Membership.objects.get_or_create(
        person=person, institution=institution, role=role, defaults={"department": department}
    )
    audit.record(actor=actor, action="network.membership_add", target=membership)
    return membership


@transaction.atomic
def build_chuxiong_network(*, actor: User | None) -> dict[str, Institution]:
    """Create the center, the ten county hospitals, their township centres and departments."""
    if Institution.objects.filter(code=chuxiong.CENTER_CODE).exists():
        raise DomainError("network_exists", _("楚雄网络已存在"))
    center = Institution.objects.create(
        code=chuxiong.CENTER_CODE,
        name=chuxiong.CENTER_NAME,
        level=Institution.Level.CENTER,
        county="楚雄市",
    )
    by_code = {center.code: center}
    for county in chuxiong.COUNTIES:
        hospital = Institution.objects.create(
            code=county.code,
            name=county.hospital,
            level=Institution.Level.COUNTY,
            county=county.name,
            parent=center,
        )
        by_code[hospital.code] = hospital
        for index, township in enumerate(county.townships):
            code = chuxiong.township_code(county, index)
            by_code[code] = Institution.objects.create(
                code=code,
                name=chuxiong.township_name(county, township),
                level=Institution.Level.TOWNSHIP,
                county=county.name,
                parent=hospital,
            )
    Department.objects.bulk_create(
        Department(institution=inst, code=code, name=name)
        for inst in by_code.values()
        for code, name in chuxiong.DEPARTMENTS
        if inst.level != Institution.Level.TOWNSHIP or code == "GENERAL"
    )
    audit.record(actor=actor, action="network.build_region", detail={"institutions": len(by_code)})
    return by_code
