"""A simulated surgeon's hand: a `HapticDevice` driven by a motor-control model, closed loop.

The validity study needs users whose errors are not the answer minus a constant. This hand
sees what a person sees on the screen (the plan: entry, target, zones; the tool where the
engine holds it) and feels what a person feels (the force the engine sends to the device),
and it errs the way hands err:

- aim: the entry point and direction it perceives carry Gaussian errors (mm, degrees);
- tremor: physiological tremor (8–12 Hz) plus a slow drift, amplitude falling with skill;
- feed-rate control: it advances at a preferred feed and slows when the felt force passes its
  comfort level, after a reaction delay (a novice pushes harder, reacts later, feeds faster,
  so its hand runs ahead of the tool and jumps forward when the resistance gives way);
- depth control: it stops where it believes the planned depth is (its own depth error) and
  overshoots by what it travels during its reaction time;
- correction: once in bone it checks its angle (with perception noise); past its tolerance
  it corrects, either by withdrawing and redrilling (better aim the second time) or, with a
  probability that falls with skill, by tilting the tool in the bone (levering).
- finishing (burr): after its sweep a hand looks at the cavity on the screen, as a surgeon
  looks before closing, and burrs what it sees left inside the lesion, never reaching farther
  from the lesion's centre than where it believes the wall is (its margin). How often it
  looks, the smallest remnant it notices and how precisely it places the burr on it improve
  with skill; a novice does not look.

Skill is one number in [0, 1] (0: first-year trainee, 1: expert); `HandParams.from_skill`
maps it to the parameters, each documented with its range. The parameters are a model, not
measurements: plausible ranges from the motor-control literature (physiological tremor
0.05–0.5 mm at 8–12 Hz; visual-motor reaction 150–300 ms) and the issue's scenarios; see
``docs/scoring.md``.

`run_hand(model, hand)` drives the engine's own step (``sim_core.step.run``) headless from
the hand, faster than real time: the hand decides every `DECISION_TICKS` ticks (100 Hz, above
the bandwidth of voluntary movement) and publishes per-tick poses (tremor included) through
its `ServoChannel`; after each block the driver writes the engine's device force back with
`write_force`, where the hand reads it. The rows it returns replay to the same state with
``sim_core.replay.play``. Coordinates: the hand works in the case frame (mm).
"""

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from haptics.channel import FloatArray
from haptics.device import BUTTON_DRILL, DeviceSpec, HapticDevice
from haptics.orientation import quaternion_from_axis
from sim_core.model import CaseModel
from sim_core.slots import (
    DT_S,
    I_AXIS,
    I_BUTTONS,
    I_POS,
    I_QUAT,
    I_SPEED,
    I_T,
    I_VEL,
    N_TICK,
    S_DISPLAY,
    S_TOOL,
    ZONE_TARGET,
)
from sim_core.state import SimState, make_state
from sim_core.step import run

DECISION_TICKS = 10  # the hand updates its intent every 10 ms
APPROACH_S = 1.0
STANDOFF_MM = 3.0  # the hand starts the drill this far in front of where it aims to enter
AIR_MM = 60.0  # withdrawn this far back along the tool before moving sideways
CHECK_DEPTH_MM = 8.0  # how far into the bone it goes before checking its angle
TREMOR_HZ = (8.0, 12.0)
LOOK_S = 1.0  # burr: a look at the cavity, the burr still and off
LEFT_FRACTION = 0.5  # burr: a voxel with over half its bone left reads as bone on the screen
FINISH_GRID_MM = 1.5  # burr: the hand places the burr on remnants about this far apart
FINISH_BITE_MM = 0.5  # burr: how far into a remnant it sets the burr's edge
FINISH_POINTS = 120  # burr: at most this many placements per look


@dataclass(frozen=True)
class HandParams:
    """One simulated user's motor-control parameters (see `from_skill` for the ranges)."""

    skill: float
    aim_sigma_mm: float  # entry point error, each axis across the plan
    angle_sigma_deg: float  # direction error
    depth_sigma_mm: float  # where it believes the planned depth is
    tremor_mm: float  # tremor amplitude (RMS per axis)
    feed_mm_s: float  # preferred feed rate
    comfort_n: float  # felt force it slows down above
    reaction_s: float  # delay between a felt change and the hand's response
    check_tolerance_deg: float  # angle error it accepts at the check
    perception_sigma_deg: float  # noise on its own angle estimate
    correction_gain: float  # share of the error removed by a correction
    lever_probability: float  # a correction by tilting in the bone instead of redrilling
    margin_bias_mm: float  # burr: how far past the lesion's wall it tends to reach
    burr_feed_mm_s: float  # burr: sweep speed (practice makes a burr faster, a drill slower)
    dwell_s: float  # pause at the bottom before withdrawing
    finish_looks: int  # burr: times it looks at the cavity and finishes what it sees left
    notice_mm3: float  # burr: the smallest remnant of lesion it notices when it looks
    finish_sigma_mm: float  # burr: placement error of the burr on a remnant it saw

    @classmethod
    def from_skill(cls, skill: float, rng: np.random.Generator | None = None) -> "HandParams":
        """Parameters for a skill level in [0, 1]; ``rng`` adds person-to-person spread."""
        s = float(np.clip(skill, 0.0, 1.0))
        n = 1.0 - s

        def spread() -> float:
            # one person differs from the next by about 15 % in each parameter
            return float(np.exp(rng.normal(0.0, 0.15))) if rng is not None else 1.0

        return cls(
            skill=s,
            aim_sigma_mm=(0.4 + 2.6 * n) * spread(),  # 0.4 .. 3 mm
            angle_sigma_deg=(1.0 + 7.0 * n) * spread(),  # 1 .. 8 degrees
            depth_sigma_mm=(0.8 + 4.2 * n) * spread(),  # 0.8 .. 5 mm
            tremor_mm=(0.05 + 0.35 * n) * spread(),  # 0.05 .. 0.4 mm
            feed_mm_s=(2.5 + 6.5 * n) * spread(),  # 2.5 .. 9 mm/s
            comfort_n=(1.2 + 2.0 * n) * spread(),  # 1.2 .. 3.2 N felt
            reaction_s=(0.15 + 0.20 * n) * spread(),  # 150 .. 350 ms
            check_tolerance_deg=(2.0 + 8.0 * n) * spread(),  # 2 .. 10 degrees
            perception_sigma_deg=(0.7 + 3.3 * n) * spread(),  # 0.7 .. 4 degrees
            correction_gain=0.85 - 0.45 * n,  # 0.85 .. 0.4
            lever_probability=0.6 * n,  # 0 .. 0.6
            margin_bias_mm=0.2 + 1.8 * n * spread(),  # 0.2 .. 2 mm
            burr_feed_mm_s=(5.0 - 2.0 * n) * spread(),  # 3 .. 5 mm/s
            dwell_s=0.5,
            # drawn last, so that every other parameter of a person stays as it was drawn
            finish_looks=round(3.0 * s),  # 0 .. 3
            notice_mm3=(1.0 + 29.0 * n) * spread(),  # 1 .. 30 mm³
            finish_sigma_mm=(0.2 + 1.3 * n) * spread(),  # 0.2 .. 1.5 mm
        )


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def _perpendiculars(axis: npt.NDArray[np.float64]) -> tuple[FloatArray, FloatArray]:
    e = np.zeros(3)
    e[int(np.argmin(np.abs(axis)))] = 1.0
    u = _unit(np.cross(axis, e))
    return u, np.cross(axis, u)


def _tilted(axis: FloatArray, deg: float, towards: FloatArray) -> FloatArray:
    return _unit(math.cos(math.radians(deg)) * axis + math.sin(math.radians(deg)) * towards)


@dataclass
class _Segment:
    """Move the hand's target from `a` to `b` (axis `da` to `db`) at the feed, power as given."""

    a: FloatArray
    b: FloatArray
    da: FloatArray
    db: FloatArray
    power: bool
    feed_mm_s: float
    force_control: bool  # slow down on felt force (cutting), or move freely (in the air)
    kind: str = "move"  # "move" | "drill" (ends at the believed depth) | "dwell"
    seconds: float = 0.0  # dwell length
    progress: float = 0.0  # 0..1 along the segment
    elapsed_s: float = 0.0


@dataclass
class SimulatedHand(HapticDevice):
    """A device moved by a hand model doing the model's scenario (see the module docstring)."""

    model: CaseModel
    params: HandParams
    seed: int = 0
    max_s: float = 240.0
    rng: np.random.Generator = field(init=False)
    segments: deque[_Segment] = field(init=False)
    pos: FloatArray = field(init=False)
    axis: FloatArray = field(init=False)
    t_s: float = field(init=False, default=0.0)
    felt: deque[float] = field(init=False)
    speed_scale: float = field(init=False, default=1.0)
    checked: bool = field(init=False, default=False)
    corrections: int = field(init=False, default=0)
    events: list[str] = field(init=False, default_factory=list)
    # what the screen shows of the bone now (density per voxel); `run_hand` connects it
    screen: Callable[[], npt.NDArray[np.float32]] | None = None
    looks_left: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        HapticDevice.__init__(self)
        self.rng = np.random.default_rng(self.seed)
        self._spec = DeviceSpec(
            name=f"simulated-hand:{self.params.skill:.2f}",
            kind="scripted",
            workspace_min_mm=(-1e4, -1e4, -1e4),
            workspace_max_mm=(1e4, 1e4, 1e4),
            max_force_n=self.model.device.max_force_n,
            max_stiffness_n_per_mm=self.model.device.max_stiffness_n_per_mm,
            renders_force=True,
        )
        plan = self.model.plan
        self.axis = plan.axis.copy()
        self.pos = np.asarray(plan.entry_mm) - 40.0 * self.axis  # the engine's home pose
        delay = max(1, round(self.params.reaction_s / (DECISION_TICKS * DT_S)))
        self.felt = deque([0.0] * delay, maxlen=delay)
        self.segments = deque()
        # tremor: two sinusoids per axis in the physiological band, plus a slow drift
        self._freq = self.rng.uniform(*TREMOR_HZ, size=(2, 3))
        self._phase = self.rng.uniform(0, 2 * math.pi, size=(2, 3))
        self._drift = np.zeros(3)
        if self.model.scenario.scoring == "burr_target":
            self._plan_burr()
        else:
            self._plan_drill(first=True)

    # --- HapticDevice ----------------------------------------------------------------------
    @property
    def spec(self) -> DeviceSpec:
        return self._spec

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.channel.put_force(np.zeros(3))
        self.is_open = False

    # --- planning what to do ---------------------------------------------------------------
    def _perceived_line(
        self, angle_sigma: float, aim_sigma: float
    ) -> tuple[FloatArray, FloatArray]:
        plan = self.model.plan
        axis = plan.axis
        u, v = _perpendiculars(axis)
        a = self.rng.normal(0.0, aim_sigma, 2)
        entry = np.asarray(plan.entry_mm) + a[0] * u + a[1] * v
        tilt = abs(self.rng.normal(0.0, angle_sigma))
        phi = self.rng.uniform(0.0, 2 * math.pi)
        direction = _tilted(axis, tilt, math.cos(phi) * u + math.sin(phi) * v)
        return entry, direction

    def _plan_drill(self, *, first: bool) -> None:
        p = self.params
        if first:
            entry, direction = self._perceived_line(p.angle_sigma_deg, p.aim_sigma_mm)
            self.depth_mm = self.model.plan.length_mm + self.rng.normal(0.0, p.depth_sigma_mm)
        else:
            # a redrill: aim again, the remaining error shrunk by the correction gain
            keep = 1.0 - p.correction_gain
            entry, direction = self._perceived_line(
                keep * p.angle_sigma_deg + 0.5, keep * p.aim_sigma_mm + 0.2
            )
        self.entry, self.direction = entry, direction
        start = entry - STANDOFF_MM * direction
        # come in along the line from well back, clear of the bone around the entry
        back = entry - AIR_MM * direction
        self.segments.append(
            _Segment(
                self.pos.copy(),
                back,
                self.axis.copy(),
                direction,
                False,
                0.0,
                False,
                seconds=APPROACH_S,
            )
        )
        self.segments.append(
            _Segment(back, start, direction, direction, False, 0.0, False, seconds=APPROACH_S)
        )
        self.segments.append(
            # it stops where it believes the depth is, plus what it travels while reacting
            _Segment(
                start,
                entry + (self.depth_mm + p.feed_mm_s * p.reaction_s) * direction,
                direction,
                direction,
                True,
                p.feed_mm_s,
                True,
                kind="drill",
            )
        )

    def _withdraw(self, then_redrill: bool) -> None:
        out = self.entry - AIR_MM * self.axis
        self.segments.clear()
        self.segments.append(
            _Segment(self.pos.copy(), out, self.axis.copy(), self.axis.copy(), True, 15.0, False)
        )
        if then_redrill:
            self._plan_drill(first=False)

    def _plan_burr(self) -> None:
        p = self.params
        plan = self.model.plan
        zone = plan.target_zone
        assert zone is not None, "a burr scenario has a target zone"
        axis = plan.axis
        u, v = _perpendiculars(axis)
        e = self.rng.normal(0.0, 0.5 * p.aim_sigma_mm, 3)
        centre = np.asarray(zone.centre_mm) + e
        burr_r = self.model.instrument.radius_mm
        reach = max(0.5, zone.radius_mm - burr_r + p.margin_bias_mm + self.rng.normal(0, 0.3))
        deep = max(0.0, p.margin_bias_mm + self.rng.normal(0.0, 0.5))  # past the far wall
        step = 0.8 + 0.6 * (1.0 - p.skill)
        entry = np.asarray(plan.entry_mm)
        points: list[FloatArray] = [entry - 5.0 * axis, entry]
        for a in np.arange(-reach, reach + deep + 1e-9, step):
            r_slice = math.sqrt(max(reach**2 - min(a, reach) ** 2, 0.0))
            for ring in np.arange(0.0, r_slice + 1e-9, step):
                for ang in np.linspace(0.0, 2 * math.pi, max(int(ring * 5), 1) + 1):
                    points.append(
                        centre + a * axis + ring * (math.cos(ang) * u + math.sin(ang) * v)
                    )
        points.append(centre)
        for i in range(1, len(points)):
            self.segments.append(
                _Segment(points[i - 1], points[i], axis, axis, i > 1, p.burr_feed_mm_s, i > 1)
            )
        self.entry, self.direction, self.depth_mm = entry, axis, 0.0
        self.checked = True  # a burr has no angle to check
        self.looks_left = p.finish_looks

    def _look_and_finish(self) -> bool:
        """Look at the cavity; plan burr placements on the lesion it sees left. False: none."""
        if self.screen is None:
            return False
        p, m = self.params, self.model
        self.looks_left -= 1
        density = self.screen()
        left = (m.label & ZONE_TARGET).astype(bool) & (density > LEFT_FRACTION * m.density0)
        left &= m.density0 > 0
        clusters, n = ndimage.label(left)
        if n == 0:
            return False
        voxel_mm3 = m.spacing_mm**3
        sizes = ndimage.sum_labels(left, clusters, index=np.arange(1, n + 1)) * voxel_mm3
        seen = np.flatnonzero(sizes >= p.notice_mm3) + 1
        if seen.size == 0:
            return False
        idx = np.argwhere(np.isin(clusters, seen))
        # one placement per cell of a coarse grid: a hand works a patch, not voxel by voxel
        cells = np.floor(idx * m.spacing_mm / FINISH_GRID_MM).astype(np.int64)
        _, cell, count = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        cell = cell.reshape(-1)
        spots = np.stack(
            [np.bincount(cell, weights=idx[:, a] * m.spacing_mm) / count for a in range(3)],
            axis=1,
        )
        burr_r = m.instrument.radius_mm
        zone = m.plan.target_zone
        assert zone is not None
        # it finishes against the lesion's wall as the screen shows it, with its own margin
        centre = np.asarray(zone.centre_mm)
        wall = max(0.5, zone.radius_mm - burr_r + p.margin_bias_mm)
        placements: list[FloatArray] = []
        here = self.pos.copy()
        todo = list(spots)
        while todo and len(placements) < FINISH_POINTS:
            k = int(np.argmin([np.linalg.norm(q - here) for q in todo]))
            spot = todo.pop(k)
            # the burr's edge into the remnant, its centre no farther out than the wall
            off = spot - centre
            dist = float(np.linalg.norm(off))
            reach = min(wall, max(0.0, dist - burr_r + FINISH_BITE_MM))
            target = centre + (off / dist if dist > 0 else off) * reach
            target = target + self.rng.normal(0.0, p.finish_sigma_mm, 3)
            placements.append(target)
            here = target
        self.events.append(f"finish:{len(placements)}")
        feed = p.burr_feed_mm_s
        start = self.pos.copy()
        self.segments.append(
            _Segment(
                start,
                start,
                self.axis.copy(),
                self.axis.copy(),
                False,
                0.0,
                False,
                kind="dwell",
                seconds=LOOK_S,
            )
        )
        for q in placements:
            self.segments.append(
                _Segment(start, q, self.axis.copy(), self.axis.copy(), True, feed, True)
            )
            start = q
        return True

    # --- one decision ------------------------------------------------------------------------
    def _tool_depth(self, tool: FloatArray) -> float:
        return float(np.dot(tool - self.entry, self.direction))

    def _check_angle(self, tool: FloatArray) -> None:
        """In bone, the hand judges its angle once; past tolerance, it corrects."""
        p = self.params
        true_err = math.degrees(
            math.acos(float(np.clip(np.dot(self.axis, self.model.plan.axis), -1, 1)))
        )
        seen = abs(true_err + self.rng.normal(0.0, p.perception_sigma_deg))
        self.checked = True
        if seen <= p.check_tolerance_deg or self.corrections >= 2:
            return
        self.corrections += 1
        if self.rng.random() < p.lever_probability:
            # steer in the bone: tilt the tool towards the plan by the gain's share of the error
            self.events.append("lever")
            target_axis = _unit(
                (1 - p.correction_gain) * self.axis + p.correction_gain * self.model.plan.axis
            )
            seg = self.segments[0]
            here = self.pos.copy()
            rest = max(0.0, self.depth_mm - self._tool_depth(tool))
            self.segments.clear()
            self.segments.append(
                _Segment(
                    here,
                    here,
                    self.axis.copy(),
                    target_axis,
                    True,
                    0.0,
                    False,
                    kind="dwell",
                    seconds=0.4,
                )
            )
            self.segments.append(
                _Segment(
                    here,
                    here + rest * target_axis,
                    target_axis,
                    target_axis,
                    True,
                    seg.feed_mm_s,
                    True,
                    kind="drill",
                )
            )
            self.direction = target_axis
        else:
            self.events.append("redrill")
            self._withdraw(then_redrill=True)

    def decide(self, tool: FloatArray, force: FloatArray) -> bool:
        """Advance the hand's intent by one decision step; False once the task is over."""
        p = self.params
        dt = DECISION_TICKS * DT_S
        self.felt.append(float(np.linalg.norm(force)))
        felt = self.felt[0]  # what it reacts to now happened a reaction time ago
        while self.segments:
            seg = self.segments[0]
            if seg.kind == "dwell" or (seg.feed_mm_s == 0.0 and seg.seconds > 0.0):
                seg.elapsed_s += dt
                w = min(1.0, seg.elapsed_s / max(seg.seconds, dt))
                self.pos = seg.a + w * (seg.b - seg.a)
                self.axis = _unit((1 - w) * seg.da + w * seg.db)
                self.power = seg.power
                if w >= 1.0:
                    self.segments.popleft()
                    if seg.kind == "drill":
                        self._after_drill()
                    continue
                return True
            length = float(np.linalg.norm(seg.b - seg.a))
            feed = seg.feed_mm_s
            if seg.force_control:
                # slow down above the comfort force, speed up again below it
                target = (
                    1.0
                    if felt < p.comfort_n
                    else max(0.0, 1.0 - (felt - p.comfort_n) / p.comfort_n)
                )
                self.speed_scale += (target - self.speed_scale) * min(1.0, dt / p.reaction_s)
                feed *= max(self.speed_scale, 0.05)
            step = feed * dt / max(length, 1e-9)
            seg.progress = min(1.0, seg.progress + step)
            self.pos = seg.a + seg.progress * (seg.b - seg.a)
            self.axis = _unit((1 - seg.progress) * seg.da + seg.progress * seg.db)
            self.power = seg.power
            if seg.kind == "drill" and not self.checked and self._tool_depth(tool) > CHECK_DEPTH_MM:
                self._check_angle(tool)
                return True
            if seg.progress >= 1.0:
                self.segments.popleft()
                if seg.kind == "drill":
                    self._after_drill()
                continue
            return True
        if self.looks_left > 0 and self._look_and_finish():
            self.power = False  # it stops the burr to look; the look's dwell starts next
            return True
        return False

    def _after_drill(self) -> None:
        here = self.pos.copy()
        self.segments.appendleft(
            _Segment(
                here,
                here,
                self.axis.copy(),
                self.axis.copy(),
                True,
                0.0,
                False,
                kind="dwell",
                seconds=self.params.dwell_s,
            )
        )
        out = self.entry - AIR_MM * self.axis
        self.segments.append(
            _Segment(here, out, self.axis.copy(), self.axis.copy(), True, 15.0, False)
        )

    # --- per-tick poses ----------------------------------------------------------------------
    power: bool = field(init=False, default=False)

    def rows(self, start: FloatArray, end: FloatArray) -> FloatArray:
        """`DECISION_TICKS` pose rows from `start` to `end` with tremor, published as it goes."""
        n = DECISION_TICKS
        rows = np.zeros((n, N_TICK), dtype=np.float64)
        w = (np.arange(n) + 1.0) / n
        t = self.t_s + (np.arange(n) + 1.0) * DT_S
        amp = self.params.tremor_mm / math.sqrt(2.0)
        tremor = (
            amp
            * np.sum(
                np.sin(2 * math.pi * self._freq[None, :, :] * t[:, None, None] + self._phase[None]),
                axis=1,
            )
            / math.sqrt(2.0)
        )
        self._drift += self.rng.normal(0.0, 0.02 * self.params.tremor_mm, 3)
        self._drift *= 0.98
        pos = start[None, :] + w[:, None] * (end - start)[None, :] + tremor + self._drift[None, :]
        axis = self.axis
        rows[:, I_T] = t
        rows[:, I_POS : I_POS + 3] = pos
        rows[:, I_AXIS : I_AXIS + 3] = axis
        rows[:, I_QUAT : I_QUAT + 4] = quaternion_from_axis(axis)
        prev = np.vstack([self._last_pos[None, :], pos[:-1]])
        rows[:, I_VEL : I_VEL + 3] = (pos - prev) / DT_S
        rows[:, I_BUTTONS] = BUTTON_DRILL if self.power else 0
        rows[:, I_SPEED] = 1.0 if self.power else 0.0
        self._last_pos = pos[-1].copy()
        self.t_s = float(t[-1])
        self.channel.publish_pose(rows[-1])
        return rows

    _last_pos: FloatArray = field(init=False, default_factory=lambda: np.zeros(3))


def run_hand(model: CaseModel, hand: SimulatedHand) -> tuple[SimState, FloatArray]:
    """Run ``hand`` closed loop on the engine, headless; return the final state and the rows."""
    state = make_state(model)
    if hand.screen is None:
        hand.screen = lambda: state.density
    hand.open()
    hand._last_pos = hand.pos.copy()
    blocks: list[FloatArray] = []
    limit = int(hand.max_s / (DECISION_TICKS * DT_S))
    for _ in range(limit):
        tool = np.array(state.st[S_TOOL : S_TOOL + 3])
        force = hand.channel.latest_force()
        before = hand.pos.copy()
        if not hand.decide(tool, force):
            break
        rows = hand.rows(before, hand.pos)
        run(model, state, rows)
        blocks.append(rows)
        hand.write_force(np.array(state.st[S_DISPLAY : S_DISPLAY + 3]))
    hand.close()
    return state, np.vstack(blocks) if blocks else np.zeros((0, N_TICK))


def hand_session(
    model: CaseModel, skill: float, seed: int, *, trial: int = 0, **kw: Any
) -> tuple[SimState, FloatArray, SimulatedHand]:
    """One attempt (``trial``) of simulated user ``seed`` of ``skill`` on the model's scenario.

    The person (their parameters) depends on ``seed`` and ``skill`` only; each trial draws
    its own aim, tremor and decisions, as a second attempt by the same person would.
    """
    rng = np.random.default_rng([seed, 7919])
    params = HandParams.from_skill(skill, rng)
    hand = SimulatedHand(model, params, seed=seed + 1_000_003 * trial, **kw)
    state, rows = run_hand(model, hand)
    return state, rows, hand
