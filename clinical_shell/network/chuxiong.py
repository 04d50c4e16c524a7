"""The reference region: Chuxiong Yi Autonomous Prefecture (楚雄彝族自治州), Yunnan.

Data only (no database access): the demo loader and the tests build the network from it.
"""

from dataclasses import dataclass

CENTER_CODE = "CX-CENTER"
CENTER_NAME = "楚雄彝族自治州人民医院"


@dataclass(frozen=True)
class County:
    code: str  # institution code of the county hospital
    name: str  # county / county-level city
    area_code: str  # first six digits of residents' ID numbers (GB/T 2260)
    hospital: str
    townships: tuple[str, ...]


COUNTIES: tuple[County, ...] = (
    County("CX-CXS", "楚雄市", "532301", "楚雄市人民医院", ("东瓜镇", "吕合镇")),
    County("CX-SB", "双柏县", "532322", "双柏县人民医院", ("妥甸镇", "大庄镇")),
    County("CX-MD", "牟定县", "532323", "牟定县人民医院", ("共和镇", "江坡镇")),
    County("CX-NH", "南华县", "532324", "南华县人民医院", ("龙川镇", "沙桥镇")),
    County("CX-YA", "姚安县", "532325", "姚安县人民医院", ("栋川镇", "光禄镇")),
    County("CX-DY", "大姚县", "532326", "大姚县人民医院", ("金碧镇", "石羊镇")),
    County("CX-YR", "永仁县", "532327", "永仁县人民医院", ("永定镇", "宜就镇")),
    County("CX-YM", "元谋县", "532328", "元谋县人民医院", ("元马镇", "黄瓜园镇")),
    County("CX-WD", "武定县", "532329", "武定县人民医院", ("狮山镇", "插甸镇")),
    County("CX-LF", "禄丰市", "532331", "禄丰市人民医院", ("金山镇", "广通镇")),
)

DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("ORTHO", "骨科"),
    ("EMERG", "急诊科"),
    ("RADIO", "放射科"),
    ("GENERAL", "全科"),
)


def township_code(county: County, index: int) -> str:
    return f"{county.code}-T{index + 1}"


def township_name(county: County, township: str) -> str:
    return f"{county.name}{township}卫生院"
