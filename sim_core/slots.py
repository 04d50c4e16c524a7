"""Slot layouts of the flat float64 arrays the numba kernels share with Python.

Numba kernels take a few C-contiguous arrays instead of objects; these constants name the
places in them. Changing a layout changes recordings: bump ``ENGINE_VERSION`` in
``sim_core.replay`` when you do.

Frames and units: positions in the *case frame* (mm, ``index * spacing_mm`` in array-axis
order), time in ticks of ``DT_S``, forces in N, torques in N·mm, densities in g/cm³.

Session accumulators in ``SimState.st`` (what scoring reads; whole session unless said, none
reset when the tool leaves bone and enters again). "In bone": some part of the tool overlaps
voxels that were bone at the start (``S_ENGAGED``). Counts of ticks × ``DT_S`` are seconds.

=============================  ==============================================================
slot                           meaning
=============================  ==============================================================
S_TICK                         ticks simulated
S_DEPTH_MAX_MM                 deepest tip along the planned axis (mm from the planned entry)
                               over the whole session, while in bone
S_DEEPEST_TIP (3)              the tip at that moment (case frame, mm)
S_DEEPEST_DIR (3)              the tool axis at that moment (the proxy's, handle to tip)
S_INS_DEPTH_MAX_MM             the same, for the current insertion only (reset on re-entry)
S_INS_DEEPEST_TIP (3)          ... its tip
S_INS_DEEPEST_DIR (3)          ... its axis
S_INSERTIONS                   separate entries into bone (redirections + 1)
S_PEAK_FORCE_N                 peak |physical force| on the tool (overlap + damping + spring)
S_FORCE_SUM_N                  sum of |F| over contact ticks (mean = sum / S_CONTACT_TICKS)
S_CONTACT_TICKS                ticks with bone inside the tool or the proxy engaged
S_ABOVE_LIMIT_TICKS            ticks with |F| above ``P_FORCE_LIMIT_N`` (the scenario's)
S_LATERAL_N                    this tick: force across the tool axis, N (0 out of bone)
S_LATERAL_PEAK_N               peak of S_LATERAL_N (levering: force across the shaft in bone)
S_LATERAL_ABOVE_TICKS          ticks in bone with S_LATERAL_N above ``P_LATERAL_LIMIT_N``
S_TORQUE (3)                   this tick: torque on the hand about the tip, N·mm (the
                               orientation proxy's rotational spring, saturated), case frame
S_TORQUE_PEAK_N_MM             peak |S_TORQUE| while in bone (levering torque)
S_TORQUE_ABOVE_TICKS           ticks in bone with |S_TORQUE| above ``P_TORQUE_LIMIT_N_MM``
S_DISPLAY_TORQUE (3)           torque sent to a torque-capable device (scaled, clamped to
                               ``P_MAX_TORQUE_N_MM``; 0 for 3-DOF devices: show S_TORQUE)
S_ANGLE_GAP_RAD                this tick: angle between the hand's axis and the tool's
S_PLUNGES                      plunges: runs past a far-cortex exit longer than P_PLUNGE_MM
S_PLUNGE_NOW_MM                this tick: travel past the last exit point along the axis
S_PLUNGE_MAX_MM                longest travel past an exit point (however long: not capped by
                               the tool's length; ends only when the tip comes back)
S_TIP_SPEED_MM_S               this tick: forward tip speed along the tool axis, mm/s,
                               smoothed over SPEED_TAU_S (exponential; the proxy's one-tick
                               catch-up at a breakthrough is not a speed the hand made)
S_PLUNGE_SPEED_MAX_MM_S        peak S_TIP_SPEED_MM_S while past an exit
S_EXIT_SPEED_MM_S              S_TIP_SPEED_MM_S at the last exit
S_BREACH_EVENTS                times the tip left original bone, moving forwards, while the
                               tool was in bone (any cortex: far, medial, lateral); backing
                               out (withdrawal) is none, and leaving again within a radius
                               (or a voxel) of the last exit is the same one
S_BREACH_TICKS                 ticks the tip spent out of bone after such an exit
S_NERVE_EVENTS / _TICKS        touches of nerve or vessel voxels by any part of the tool
S_PROTECTED_EVENTS / _TICKS    touches of the scenario's protected zone
S_POWER_OFF_TICKS              ticks a powered tool, switched off, had bone inside it or
                               the proxy engaged (pushed against bone with the power off)
S_POWER_OFF_PEAK_N             peak |F| during those ticks
S_POWERED_TICKS                ticks with the power on
S_PROXY_TICKS                  ticks with the position proxy engaged
S_HOLE_BONE_BINS               bins of the planned path (entry → target, N_HOLE_BINS equal
                               bins) that hold original bone on the plan line
S_HOLE_DONE_BINS               of those, bins where the tool removed bone with its tip within
                               its radius of the plan line (hole completeness = done / bone)
S_HOLE (N_HOLE_BINS)           per bin: -1 no bone on the plan line, 0 not drilled, 1 drilled
S_REMOVED + R_*                intact-bone volume removed: total, in target, outside, in the
                               protected zone (mm³)
=============================  ==============================================================

Per-tick pose and force: S_DEVICE / S_DEVICE_DIR (the hand), S_TOOL / S_DIR / S_TOOL_NORMAL
(the tool as simulated: the 6-DOF proxy), S_FORCE (physical), S_DISPLAY (to the device).
"""

import numpy as np

DT_S = 0.001  # one tick: the haptic rate is 1 kHz
CHUNK = 32  # remeshing works on 32³-voxel chunks
RHO_REF_G_CM3 = 1.8  # a voxel of this density counts fully in the contact force (cortex)
SPEED_TAU_S = 0.05  # tip speeds are smoothed with this time constant

# --- tick input row (the same 16 fields, in the same order, as haptics.channel's pose row) ---
TICK_FIELDS: tuple[str, ...] = (
    "t_s",
    "x_mm",
    "y_mm",
    "z_mm",
    "qw",
    "qx",
    "qy",
    "qz",
    "axis_x",
    "axis_y",
    "axis_z",
    "vx_mm_s",
    "vy_mm_s",
    "vz_mm_s",
    "buttons",
    "speed",
)
N_TICK = len(TICK_FIELDS)
I_T, I_POS, I_QUAT, I_AXIS, I_VEL, I_BUTTONS, I_SPEED = 0, 1, 4, 8, 11, 14, 15
BUTTON_POWER = 1  # bit 0: drill / burr / saw running
TICK_INPUT_DTYPE = np.dtype([(name, np.float64) for name in TICK_FIELDS])

# --- tool row: one instrument's geometry and cutting, float64 ---
KIND_SPHERE, KIND_CYLINDER, KIND_BLADE = 0, 1, 2
T_KIND = 0  # one of KIND_*
T_RADIUS_MM = 1  # sphere / cylinder radius; blade: half thickness
T_LENGTH_MM = 2  # the instrument's length behind the tip (shaft, blade); 0 for spheres
T_WIDTH_MM = 3  # blade width (in the blade plane, across the axis); 0 otherwise
T_CUT_MM = 4  # only voxels within this distance behind the tip are cut (the rest: shaft)
T_EROSION = 5  # density removed per second at full speed and reference thrust [g/cm³/s]
T_POWERED = 6  # 1: cuts only while powered (button + speed); 0: cuts when pushed (awl)
T_REF_RADIUS_MM = 7  # R of the Forsslund model: force ∝ V/R³, proxy thresholds ∝ R³
N_TOOL = 8

# --- model parameters, float64 ---
P_SPACING_MM = 0
P_VOXEL_MM3 = 1
P_GAIN_N = 2  # Forsslund P: F = P·(V/R³)·n
P_DAMPING_N_S_PER_MM = 3  # Forsslund D (opposes the device velocity while in contact)
P_PROXY_K_N_PER_MM = 4  # spring between proxy and device
P_PROXY_ON = 5  # proxy engages when occupied volume > this fraction of (4/3)πR³
P_PROXY_OFF = 6  # and releases below this fraction ...
P_PROXY_RELEASE_MM = 7  # ... with the device within this distance of the proxy
P_MAX_FORCE_N = 8  # the device's force limit (display force is clamped to it)
P_DISPLAY_SCALE = 9  # display force per physical force, already limited by max stiffness
P_FORCE_LIMIT_N = 10  # the scenario's "excessive force" threshold (physical force)
P_THRUST_REF_N = 11  # erosion runs at the nominal rate at this force
P_TEXTURE_N = 12  # amplitude of the cutting vibration added to the display force
P_PLAN_ENTRY = 13  # 3 floats: planned entry point (case frame, mm)
P_PLAN_TARGET = 16  # 3 floats: planned target point
P_ENGAGE_GAP_TICKS = 19  # a disengagement shorter than this is not a new insertion
P_PLUNGE_MM = 20  # an advance past a far-cortex exit longer than this is a plunge
P_SPRING_SAT_N = 21  # the hand–proxy spring saturates at this force (tanh); 0: linear
P_GRIP_MM = 22  # lever from the tip to the hand: rotational stiffness = k·grip², torque sat
P_MAX_TORQUE_N_MM = 23  # the device's torque limit (0: it renders no torque)
P_LATERAL_LIMIT_N = 24  # levering: force across the shaft in bone above this is counted
P_TORQUE_LIMIT_N_MM = 25  # levering: torque in bone above this is counted
P_ROT_SLACK_MM3 = 26  # the proxy turns while the shaft holds at most this much more bone
N_PARAMS = 27

# --- label grid bits: tissue in the low 3 bits, scenario zones above ---
TISSUE_MASK = 7
ZONE_TARGET = 16
ZONE_PROTECTED = 32

# --- pose row passed to the contact kernels ---
Q_TIP = 0  # 3: tool tip (sphere: centre), case frame mm
Q_DIR = 3  # 3: unit tool axis, handle to tip (the direction it advances)
Q_NORMAL = 6  # 3: unit blade normal (blades only; orthogonal to Q_DIR)
Q_VEL = 9  # 3: device velocity, mm/s
N_POSE = 12

# --- overlap accumulator (written by _overlap) ---
O_OCC_MM3 = 0  # volume of voxels with bone left inside the tool
O_WEIGHTED_MM3 = 1  # same, each voxel weighted by density / P_RHO_REF
O_PUSH = 2  # 3: density-weighted sum of (tool core - voxel) vectors, mm·mm³
O_BONE_VOXELS = 5  # voxels that were bone at the start (drilled or not) inside the tool
O_NERVE_VOXELS = 6  # nerve or vessel voxels inside the tool
O_PROTECTED_VOXELS = 7  # protected-zone voxels inside the tool
N_OVERLAP = 8

# --- removal accumulator (written by _erode), mm³ of intact bone removed ---
R_TOTAL_MM3 = 0
R_TARGET_MM3 = 1
R_OUTSIDE_MM3 = 2  # not in the target zone
R_PROTECTED_MM3 = 3
N_REMOVED = 4

# --- simulation state scalars, float64 ---
S_TICK = 0
S_RNG = 1  # xorshift32 state, an integer below 2**32
S_DEVICE = 2  # 3: device position
S_TOOL = 5  # 3: tool tip used for contact (the proxy: follows the device where bone allows)
S_PROXY_ON = 8
S_DIR = 9  # 3: tool axis (the proxy's: the tool as simulated), handle to tip
S_FORCE = 12  # 3: physical contact force on the tool, N
S_DISPLAY = 15  # 3: force sent to the device (scaled, clamped, with texture), N
S_OVERLAP = 18  # N_OVERLAP slots: the last tick's overlap at the tool position
S_REMOVED = S_OVERLAP + N_OVERLAP  # N_REMOVED slots: cumulative removal
S_PEAK_FORCE_N = S_REMOVED + N_REMOVED
S_FORCE_SUM_N = S_PEAK_FORCE_N + 1  # sum of |F| over ticks in contact
S_CONTACT_TICKS = S_FORCE_SUM_N + 1
S_ABOVE_LIMIT_TICKS = S_CONTACT_TICKS + 1
S_NERVE_TICKS = S_ABOVE_LIMIT_TICKS + 1
S_NERVE_EVENTS = S_NERVE_TICKS + 1
S_PROTECTED_TICKS = S_NERVE_EVENTS + 1
S_PROTECTED_EVENTS = S_PROTECTED_TICKS + 1
S_ENGAGED = S_PROTECTED_EVENTS + 1  # 1 while the tool touches (original) bone
S_LAST_ENGAGED_TICK = S_ENGAGED + 1
S_INSERTIONS = S_LAST_ENGAGED_TICK + 1  # separate entries into bone (redirections + 1)
S_TIP_IN_BONE = S_INSERTIONS + 1  # the voxel at the tip was bone at the start
S_TIP_WAS_IN_BONE = S_TIP_IN_BONE + 1  # the tip has been inside bone this insertion
S_EXITED = S_TIP_WAS_IN_BONE + 1  # the tip left bone forwards while still engaged
S_EXIT = S_EXITED + 1  # 3: where it left
S_PLUNGE_NOW_MM = S_EXIT + 3
S_PLUNGE_MAX_MM = S_PLUNGE_NOW_MM + 1
S_PLUNGES = S_PLUNGE_MAX_MM + 1
S_DEPTH_MAX_MM = S_PLUNGES + 1  # deepest tip along the planned axis, from the entry (session)
S_DEEPEST_TIP = S_DEPTH_MAX_MM + 1  # 3: tip at that moment
S_DEEPEST_DIR = S_DEEPEST_TIP + 3  # 3: axis at that moment
S_POWERED_TICKS = S_DEEPEST_DIR + 3
S_PROXY_TICKS = S_POWERED_TICKS + 1
S_POSE = S_PROXY_TICKS + 1  # N_POSE slots: the pose the last tick used (scratch for kernels)
# --- 6-DOF proxy, levering, plunge speed, breaches, power-off, hole progress (engine 2) ---
S_DEVICE_DIR = S_POSE + N_POSE  # 3: the hand's tool axis (input), unit
S_DEVICE_NORMAL = S_DEVICE_DIR + 3  # 3: the hand's blade normal
S_TOOL_NORMAL = S_DEVICE_NORMAL + 3  # 3: the proxy's blade normal (S_DIR: its axis)
S_CAND_POSE = S_TOOL_NORMAL + 3  # N_POSE: scratch, a candidate proxy pose
S_INS_DEPTH_MAX_MM = S_CAND_POSE + N_POSE
S_INS_DEEPEST_TIP = S_INS_DEPTH_MAX_MM + 1  # 3
S_INS_DEEPEST_DIR = S_INS_DEEPEST_TIP + 3  # 3
S_LATERAL_N = S_INS_DEEPEST_DIR + 3
S_LATERAL_PEAK_N = S_LATERAL_N + 1
S_LATERAL_ABOVE_TICKS = S_LATERAL_PEAK_N + 1
S_TORQUE = S_LATERAL_ABOVE_TICKS + 1  # 3
S_TORQUE_PEAK_N_MM = S_TORQUE + 3
S_TORQUE_ABOVE_TICKS = S_TORQUE_PEAK_N_MM + 1
S_DISPLAY_TORQUE = S_TORQUE_ABOVE_TICKS + 1  # 3
S_ANGLE_GAP_RAD = S_DISPLAY_TORQUE + 3
S_PLUNGE_SPEED_MAX_MM_S = S_ANGLE_GAP_RAD + 1
S_EXIT_SPEED_MM_S = S_PLUNGE_SPEED_MAX_MM_S + 1
S_PREV_TIP = S_EXIT_SPEED_MM_S + 1  # 3: the tip of the tick before (speeds)
S_TIP_SPEED_MM_S = S_PREV_TIP + 3  # forward tip speed along the axis, smoothed over 50 ms
S_BREACH_EVENTS = S_TIP_SPEED_MM_S + 1
S_BREACH_TICKS = S_BREACH_EVENTS + 1
S_POWER_OFF_TICKS = S_BREACH_TICKS + 1
S_POWER_OFF_PEAK_N = S_POWER_OFF_TICKS + 1
S_HOLE_BONE_BINS = S_POWER_OFF_PEAK_N + 1
S_HOLE_DONE_BINS = S_HOLE_BONE_BINS + 1
N_HOLE_BINS = 64
S_HOLE = S_HOLE_DONE_BINS + 1  # N_HOLE_BINS: -1 no bone on the plan line, 0 to do, 1 drilled
N_STATE = S_HOLE + N_HOLE_BINS

# the tick's voxel list (``SimState.work``, float64[N_WORK_ROWS, capacity]): the voxels near
# the tool's path this tick that hold bone or a label, gathered once in index order so the
# proxy search, overlap and erosion visit them without rescanning the grid
W_X = 0  # voxel centre, mm (i · spacing)
W_Y = 1
W_Z = 2
W_RHO = 3  # density when gathered, g/cm³
W_LABEL = 4  # tissue | zone bits
W_INDEX = 5  # flat index into the grid
W_TOOL = 6  # first N_TOOL entries: the tool grown by the step's length (what was gathered)
# in the W_TOOL row after the grown tool: what the tick's first half (force) hands its second
# half (cutting, metrics): the list's two counts, and the nerve / protected contact flags the
# tick started with
W_HANDOFF = N_TOOL
N_HANDOFF = 4
N_WORK_TOOL = N_TOOL + N_HANDOFF
# row W_NEXT: the list the tick's second half gathered for the next tick (the only thing
# ``work`` keeps between ticks), and what it is valid for: the next tick takes it instead of
# gathering when the state is the one it was gathered from (tick, tool pose, bone removed,
# RNG) and that tick's candidate poses lie within the growth it was gathered with
W_NEXT = 7
NEXT_VALID = 0  # 1.0: the rows hold a list gathered for the next tick
NEXT_TICK = 1  # S_TICK of the tick it is for
NEXT_TIP = 2  # 3: the tool's tip, axis and blade normal it was gathered about
NEXT_DIR = 5
NEXT_NORMAL = 8
NEXT_REMOVED = 11  # S_REMOVED + R_TOTAL_MM3 then
NEXT_RNG = 12  # S_RNG then
NEXT_GROWTH_MM = 13  # how far the tool was grown (G): any pose within G of that one is listed
NEXT_BONE = 14  # the list's two counts
NEXT_LABELLED = 15
N_NEXT = 16
N_WORK_ROWS = 8
N_WORK_MIN = max(N_WORK_TOOL, N_NEXT)  # the least capacity a work array may have
WORK_CAPACITY = 65536  # voxels; a longer list falls back to scanning the grid (same result)
