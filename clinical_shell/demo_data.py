"""Word lists for the demo region: names, orthopedic diagnoses and procedures (data only)."""

# common surnames in Chuxiong, including Yi surnames (普, 鲁, 起, 者, 施); one character each
SURNAMES = tuple("李张杨王刘陈罗普鲁起者施苏赵周马何黄段朱杞毕沙龙郭曾余徐胡孙")
GIVEN_MALE = tuple("明强军伟勇华建国文斌林成海志荣东平福德忠光永春云学兴昌贵顺龙")
GIVEN_FEMALE = tuple("丽芳英兰琼秀梅红艳萍燕玲霞娟敏洁珍莲凤美翠琴慧静月花云春仙芬")

# (ICD-10, description, AO/OTA or "", typical ICD-9-CM-3 procedure or None)
ORTHO_DIAGNOSES: tuple[tuple[str, str, str, tuple[str, str] | None], ...] = (
    ("S72.0", "股骨颈骨折", "31B2.1", ("81.51", "全髋关节置换术")),
    ("S72.1", "股骨转子间骨折", "31A2.2", ("79.35", "股骨骨折切开复位内固定术")),
    ("S52.5", "桡骨远端骨折", "2R3A2.1", ("79.32", "桡骨骨折切开复位内固定术")),
    ("S82.2", "胫骨干骨折", "42A1", ("79.36", "胫骨骨折切开复位内固定术")),
    ("S82.8", "踝关节骨折", "44B2.1", ("79.36", "踝关节骨折切开复位内固定术")),
    ("S42.2", "肱骨近端骨折", "11A2", ("79.31", "肱骨骨折切开复位内固定术")),
    ("S32.0", "腰椎骨折", "", ("81.08", "腰椎后路融合术")),
    ("S22.0", "胸椎骨折", "", None),
    ("M16.1", "原发性髋关节骨关节炎", "", ("81.51", "全髋关节置换术")),
    ("M17.1", "原发性膝关节骨关节炎", "", ("81.54", "全膝关节置换术")),
    ("M51.2", "腰椎间盘突出症", "", ("80.51", "椎间盘切除术")),
    ("M48.0", "腰椎管狭窄症", "", ("03.09", "椎管减压术")),
    ("M80.0", "绝经后骨质疏松伴病理性骨折", "", None),
    ("S83.5", "膝关节前交叉韧带损伤", "", ("81.45", "交叉韧带重建术")),
    ("S62.6", "指骨骨折", "", None),
)
# chief complaints that fit each diagnosis's mechanism: a fall for a hip fracture in the
# elderly, a twist for an ankle, years of pain for arthritis; nothing contradicts the diagnosis
COMPLAINTS_BY_DIAGNOSIS: dict[str, tuple[str, ...]] = {
    "S72.0": ("平地跌倒后髋部疼痛、不能站立", "滑倒后髋部疼痛、患肢外旋短缩"),
    "S72.1": ("跌倒后髋部疼痛、不能行走", "从床上跌落后髋部肿痛"),
    "S52.5": ("跌倒时手掌撑地后腕部肿痛、畸形", "摔伤后腕部疼痛、活动受限"),
    "S82.2": ("车祸伤后小腿肿痛、畸形", "重物砸伤小腿后疼痛、不能负重"),
    "S82.8": ("下楼扭伤后踝部肿痛、不能负重", "劳作时踩空扭伤踝部"),
    "S42.2": ("跌倒时肩部着地后疼痛、抬臂困难", "摔伤后肩部肿痛、活动受限"),
    "S32.0": ("高处坠落后腰背部疼痛", "摔坐在地后腰痛、翻身困难"),
    "S22.0": ("高处坠落后胸背部疼痛", "车祸伤后胸背痛"),
    "M16.1": ("髋部疼痛多年、行走加重", "髋关节疼痛伴活动受限 3 年"),
    "M17.1": ("膝关节疼痛多年、上下楼加重", "双膝疼痛伴行走受限 5 年"),
    "M51.2": ("腰痛伴下肢放射痛、麻木", "弯腰搬重物后腰腿痛"),
    "M48.0": ("腰腿痛、行走一段距离后需休息", "间歇性跛行 1 年"),
    "M80.0": ("轻微外力后腰背痛", "弯腰后突发腰背部疼痛"),
    "S83.5": ("运动时膝关节扭伤后肿痛、打软腿", "踢球扭伤膝关节后不稳"),
    "S62.6": ("手指被挤压后肿痛", "摔伤后手指肿痛、畸形"),
}

# whom each diagnosis fits, at the encounter: (youngest, oldest, sexes). A femoral neck or
# intertrochanteric fracture after a low fall, and the joint replaced, is an old person's; primary
# arthritis and spinal stenosis come with age; postmenopausal osteoporosis is a woman's after
# fifty; a torn cruciate ligament is a sporting injury of the young; a child breaks a wrist or a
# finger. Every age from DEMO_YOUNGEST up has at least one fitting diagnosis for either sex.
DIAGNOSIS_FITS: dict[str, tuple[int, int, str]] = {
    "S72.0": (60, 120, "MF"),
    "S72.1": (60, 120, "MF"),
    "S52.5": (6, 120, "MF"),
    "S82.2": (12, 120, "MF"),
    "S82.8": (12, 120, "MF"),
    "S42.2": (40, 120, "MF"),
    "S32.0": (16, 120, "MF"),
    "S22.0": (16, 120, "MF"),
    "M16.1": (50, 120, "MF"),
    "M17.1": (50, 120, "MF"),
    "M51.2": (20, 70, "MF"),
    "M48.0": (50, 120, "MF"),
    "M80.0": (50, 120, "F"),
    "S83.5": (14, 50, "MF"),
    "S62.6": (6, 120, "MF"),
}
DEMO_YOUNGEST = 6


def diagnoses_fitting(
    age: int, sex: str
) -> tuple[tuple[str, str, str, tuple[str, str] | None], ...]:
    """The demo diagnoses that fit a patient of this age (whole years) and sex ("M"/"F")."""
    return tuple(
        dx
        for dx in ORTHO_DIAGNOSES
        if DIAGNOSIS_FITS[dx[0]][0] <= age <= DIAGNOSIS_FITS[dx[0]][1]
        and sex in DIAGNOSIS_FITS[dx[0]][2]
    )
