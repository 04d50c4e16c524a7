# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Default referral criteria and answer times: design defaults of the domain sheet §3.2 (no
official national orthopedic list exists), stored as data each network edits."""

from typing import Any

from django.db import migrations

UP = ["township", "county"]
DOWN = ["center", "county"]
CRITERIA = [
    (
        "up_open_fracture_neurovascular",
        "up",
        UP,
        True,
        "开放性骨折，或合并血管、神经损伤、骨筋膜室综合征",
        "Open fracture, or fracture with vascular or nerve injury or compartment syndrome",
    ),
    (
        "up_severe_trauma",
        "up",
        UP,
        True,
        "多发伤/严重创伤（ISS≥16、RTS<11 或休克）、骨盆或髋臼骨折、脊柱骨折伴或可能伴神经损伤",
        "Multiple or severe trauma (ISS ≥ 16, RTS < 11 or shock), pelvic or acetabular fracture, "
        "spinal fracture with or at risk of neurological deficit",
    ),
    (
        "up_hip_fracture_elderly",
        "up",
        UP,
        False,
        "老年髋部骨折（需 24–48 小时内手术及老年医学共管）",
        "Hip fracture in an older patient (surgery within 24-48 h, orthogeriatric co-management)",
    ),
    (
        "up_operative_fracture",
        "up",
        UP,
        False,
        "移位或关节内骨折需手术固定且超出本级能力；儿童骨骺骨折；病理性骨折或疑似骨肿瘤",
        "Displaced or intra-articular fracture needing fixation beyond local capacity; physeal "
        "fracture in a child; pathological fracture or suspected bone tumour",
    ),
    (
        "up_infection",
        "up",
        UP,
        False,
        "疑似骨或关节感染（骨髓炎、化脓性关节炎、假体周围感染）",
        "Suspected bone or joint infection (osteomyelitis, septic arthritis, periprosthetic)",
    ),
    (
        "up_degenerative_surgery",
        "up",
        UP,
        False,
        "退行性疾病保守治疗无效且有手术指征，尤其是本级未备案或无授权的三、四级手术或限制类技术",
        "Degenerative disease with failed conservative care and a surgical indication, especially "
        "grade 3-4 operations or restricted techniques not filed or privileged here",
    ),
    (
        "up_complication",
        "up",
        UP,
        False,
        "外院术后并发症（伤口裂开、疑似深静脉血栓/肺栓塞、内固定失效、脱位）",
        "Complication after surgery elsewhere (wound breakdown, suspected DVT/PE, implant "
        "failure, dislocation)",
    ),
    (
        "down_stable_post_op",
        "down",
        DOWN,
        False,
        "术后病情稳定：伤口愈合良好、无活动性并发症、引流已拔除、口服药可控制疼痛",
        "Stable after surgery: wound healing, no active complication, drains out, pain "
        "controlled with oral drugs",
    ),
    (
        "down_rehabilitation",
        "down",
        DOWN,
        False,
        "需康复治疗、拆线换药、抗凝疗程及监测、按计划复查影像",
        "Needs rehabilitation, suture removal and dressings, an anticoagulation course with "
        "monitoring, scheduled follow-up imaging",
    ),
    (
        "down_chronic_conservative",
        "down",
        DOWN,
        False,
        "慢性病保守治疗（骨关节炎、骨质疏松、慢性腰痛），已有专科方案",
        "Chronic condition managed conservatively (osteoarthritis, osteoporosis, chronic low "
        "back pain) with a specialist's plan",
    ),
]
# minutes the receiving institution has to answer (configurable; the sheet gives none for
# referral, these follow its teleconsultation figures)
TIME_LIMITS = {"routine": 48 * 60, "urgent": 4 * 60, "emergency": 30}


def seed(apps: Any, schema_editor: Any) -> None:
    Criterion = apps.get_model("referrals", "Criterion")
    TimeLimit = apps.get_model("referrals", "TimeLimit")
    for order, (code, direction, levels, emergency, zh, en) in enumerate(CRITERIA):
        Criterion.objects.update_or_create(
            code=code,
            defaults={
                "direction": direction,
                "sender_levels": levels,
                "emergency": emergency,
                "text_zh": zh,
                "text_en": en,
                "order": order,
            },
        )
    for urgency, minutes in TIME_LIMITS.items():
        TimeLimit.objects.update_or_create(
            urgency=urgency, defaults={"answer_within_minutes": minutes}
        )


class Migration(migrations.Migration):
    dependencies = [("referrals", "0001_referral_tables")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
