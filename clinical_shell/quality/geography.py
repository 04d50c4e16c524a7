"""Approximate positions (longitude, latitude, WGS-84) of the demo region's institutions.

Data only, from public knowledge of where each town lies (a town's seat, to ~0.05°): enough to
draw the network offline, not for navigation. Keyed by institution code (network/chuxiong.py);
an institution without a position is listed beside the map instead of drawn.
"""

POSITIONS: dict[str, tuple[float, float]] = {
    "CX-CENTER": (101.546, 25.040),
    "CX-CXS": (101.530, 25.025),
    "CX-CXS-T1": (101.590, 25.010),  # 东瓜镇
    "CX-CXS-T2": (101.380, 25.150),  # 吕合镇
    "CX-SB": (101.640, 24.690),  # 妥甸镇 (county seat)
    "CX-SB-T1": (101.655, 24.675),
    "CX-SB-T2": (101.560, 24.800),  # 大庄镇
    "CX-MD": (101.540, 25.310),  # 共和镇
    "CX-MD-T1": (101.555, 25.300),
    "CX-MD-T2": (101.450, 25.370),  # 江坡镇
    "CX-NH": (101.270, 25.190),  # 龙川镇
    "CX-NH-T1": (101.285, 25.180),
    "CX-NH-T2": (101.170, 25.250),  # 沙桥镇
    "CX-YA": (101.240, 25.500),  # 栋川镇
    "CX-YA-T1": (101.255, 25.490),
    "CX-YA-T2": (101.300, 25.560),  # 光禄镇
    "CX-DY": (101.320, 25.730),  # 金碧镇
    "CX-DY-T1": (101.335, 25.720),
    "CX-DY-T2": (101.270, 25.860),  # 石羊镇
    "CX-YR": (101.670, 26.050),  # 永定镇
    "CX-YR-T1": (101.685, 26.040),
    "CX-YR-T2": (101.560, 26.150),  # 宜就镇
    "CX-YM": (101.870, 25.700),  # 元马镇
    "CX-YM-T1": (101.885, 25.690),
    "CX-YM-T2": (101.860, 25.600),  # 黄瓜园镇
    "CX-WD": (102.400, 25.530),  # 狮山镇
    "CX-WD-T1": (102.415, 25.520),
    "CX-WD-T2": (102.350, 25.700),  # 插甸镇
    "CX-LF": (102.080, 25.150),  # 金山镇
    "CX-LF-T1": (102.095, 25.140),
    "CX-LF-T2": (101.830, 25.100),  # 广通镇
}


def outline(points: list[tuple[float, float]], margin: float = 0.12) -> list[tuple[float, float]]:
    """A simple outline around the points: their convex hull pushed outwards by `margin` degrees
    (monotone chain), closed. Not the prefecture's border: a frame that needs no map data."""
    unique = sorted(set(points))
    if len(unique) < 3:
        return []

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in unique:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(unique):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    cx = sum(p[0] for p in hull) / len(hull)
    cy = sum(p[1] for p in hull) / len(hull)
    grown = []
    for x, y in hull:
        dx, dy = x - cx, y - cy
        length = (dx * dx + dy * dy) ** 0.5 or 1.0
        grown.append((round(x + dx / length * margin, 4), round(y + dy / length * margin, 4)))
    return [*grown, grown[0]]
