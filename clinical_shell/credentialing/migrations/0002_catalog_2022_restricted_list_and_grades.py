# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""The catalog as the domain sheet (§1.2, §1.3) gives it: the 2022 national restricted list
(reconstructed; most items unverified there, so `verified` stays False) and surgical grades 1-4.

Rows are data: an administrator edits them (a province adds items, a hospital tightens rules).
"""

import datetime

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

LIST_2022 = "国家限制类技术目录（2022年版）"
RECONSTRUCTED = "2017 list minus removed items plus additions (domain sheet §1.2, unverified)"
SECONDARY = "http://cn-witmed.com/list/11/2170.html (secondary)"

# code, Chinese name, English name, orthopedic, source
TECHNIQUES = [
    (
        "allograft-msk",
        "同种异体运动系统结构性组织移植治疗技术",
        "Allogeneic structural musculoskeletal tissue transplantation",
        True,
        RECONSTRUCTED,
    ),
    (
        "ai-assisted-treatment",
        "人工智能辅助治疗技术（手术机器人）",
        "AI-assisted treatment (surgical robots)",
        True,
        SECONDARY,
    ),
    ("tumour-ablation", "肿瘤消融治疗技术", "Tumour ablation", True, RECONSTRUCTED),
    ("ecmo", "体外膜肺氧合技术", "ECMO", False, SECONDARY),
    (
        "autologous-organ-transplant",
        "自体器官移植技术",
        "Autologous organ transplantation",
        False,
        SECONDARY,
    ),
    (
        "allo-hsct",
        "同种异体造血干细胞移植治疗技术",
        "Allogeneic haematopoietic stem-cell transplantation",
        False,
        RECONSTRUCTED,
    ),
    (
        "allo-islet",
        "同种异体胰岛移植治疗技术",
        "Allogeneic islet transplantation",
        False,
        RECONSTRUCTED,
    ),
    (
        "allo-cornea",
        "同种异体角膜移植技术",
        "Allogeneic corneal transplantation",
        False,
        RECONSTRUCTED,
    ),
    ("gender-reassignment", "性别重置技术", "Gender reassignment", False, RECONSTRUCTED),
    (
        "proton-heavy-ion",
        "质子和重离子加速器放射治疗技术",
        "Proton and heavy-ion radiotherapy",
        False,
        RECONSTRUCTED,
    ),
    (
        "radioactive-seed",
        "放射性粒子植入治疗技术",
        "Radioactive seed implantation",
        False,
        RECONSTRUCTED,
    ),
    ("ventricular-assist", "心室辅助技术", "Ventricular assist", False, RECONSTRUCTED),
]

GRADE_SOURCE = (
    "医疗机构手术分级管理办法 国卫办医政发〔2022〕18号 (wording unverified); "
    "2012 definitions 卫办医政发〔2012〕94号 (secondary)"
)
GRADES = [
    (
        1,
        "一级手术",
        "Grade 1 operation",
        "风险较低、过程简单、技术难度低",
        "Low risk, simple process, low technical difficulty",
    ),
    (
        2,
        "二级手术",
        "Grade 2 operation",
        "有一定风险、过程复杂程度一般、有一定技术难度",
        "Moderate risk, process of ordinary complexity, some technical difficulty",
    ),
    (
        3,
        "三级手术",
        "Grade 3 operation",
        "风险较高、过程较复杂、难度较大",
        "Fairly high risk, fairly complex process, fairly difficult",
    ),
    (
        4,
        "四级手术",
        "Grade 4 operation",
        "风险高、过程复杂、难度大、资源消耗多或涉及重大伦理风险",
        "High risk, complex process, difficult, heavy resource use or major ethical risk",
    ),
]


def load(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    technique = apps.get_model("credentialing", "Technique")
    grade = apps.get_model("credentialing", "SurgicalGrade")
    for code, name, name_en, orthopedic, source in TECHNIQUES:
        technique.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "category": "restricted_national",
                "orthopedic": orthopedic,
                "source": f"{LIST_2022}; {source}",
                "version": "2022",
                "effective_from": datetime.date(2022, 4, 20),
                "verified": False,
            },
        )
    for level, name, name_en, definition, definition_en in GRADES:
        grade.objects.update_or_create(
            level=level,
            defaults={
                "name": name,
                "name_en": name_en,
                "definition": definition,
                "definition_en": definition_en,
                "source": GRADE_SOURCE,
            },
        )


def unload(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("credentialing", "Technique").objects.filter(
        code__in=[row[0] for row in TECHNIQUES], requirements=None, privileges=None, filings=None
    ).delete()
    apps.get_model("credentialing", "SurgicalGrade").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("credentialing", "0001_credentialing_catalog_privileges_committee")]

    operations = [migrations.RunPython(load, unload)]
