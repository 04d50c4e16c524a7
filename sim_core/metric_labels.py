"""What each scoring metric is called on screen: Chinese first, then English, with its unit.

One table for the HUD, the command line and (later) the shell's score pages, so that a
surgeon reads "钉尾偏移 / tail offset (mm)" and never a key such as ``tail_offset_mm``.
"""

METRIC_LABELS: dict[str, str] = {
    "time_s": "用时 / time (s)",
    "peak_force_n": "峰值力 / peak force (N)",
    "mean_contact_force_n": "平均接触力 / mean contact force (N)",
    "time_above_force_limit_s": "超力时长 / time above force limit (s)",
    "nerve_contacts": "触及神经次数 / nerve contacts",
    "nerve_contact_s": "触及神经时长 / nerve contact time (s)",
    "protected_contacts": "触及保护区次数 / protected-zone contacts",
    "protected_contact_s": "触及保护区时长 / protected-zone contact time (s)",
    "removed_mm3": "去骨量 / bone removed (mm³)",
    "removed_outside_mm3": "目标外去骨 / removed outside target (mm³)",
    "target_removed_pct": "目标清除率 / target removed (%)",
    "tip_offset_mm": "钉尖偏移 / tip offset (mm)",
    "tail_offset_mm": "钉尾偏移 / tail offset (mm)",
    "angle_deg": "角度偏差 / angle to plan (°)",
    "breach_mm": "皮质穿破 / cortical breach (mm)",
    "gr_grade_index": "Gertzbein–Robbins 分级 / grade (0 = A)",
    "depth_mm": "深度 / depth (mm)",
    "depth_error_mm": "深度误差 / depth error (mm)",
    "plunge_mm": "突破深度 / plunge (mm)",
    "plunges": "突破次数 / plunges",
    "tip_apex_mm": "尖顶距 / tip–apex distance (mm)",
    "redirections": "调整方向次数 / redirections",
    "lateral_peak_n": "撬拨峰值侧向力 / peak lateral (levering) force (N)",
    "torque_peak_n_mm": "撬拨峰值扭矩 / peak levering torque (N·mm)",
    # live HUD only: the torque bone holds against the hand now (what a 3-DOF arm cannot render)
    "torque_n_mm": "扭矩 / torque (N·mm)",
    "levering_s": "撬拨时长 / levering time (s)",
    "plunge_speed_mm_s": "突破速度 / plunge speed (mm/s)",
    "power_off_push_s": "未开钻推压时长 / pushing with power off (s)",
    "power_off_peak_n": "未开钻推压峰值力 / peak force with power off (N)",
    "breaches": "穿出骨皮质次数 / cortical exits",
    "hole_completeness_pct": "钻孔完成度 / hole completeness (%)",
    "cut_completeness_pct": "截骨完成度 / planned cut done (%)",
    "cut_angle_deg": "截骨面夹角 / cut plane angle to plan (°)",
    "cut_offset_mm": "截骨面偏移 / cut plane offset (mm)",
    "removed_off_plane_mm3": "截骨面外去骨 / bone cut off the plane (mm³)",
    "hole_on_plan_pct": "计划路径钻通率 / planned path drilled (%)",
    "removed_off_track_mm3": "钉道外去骨 / bone removed off the track (mm³)",
    "protected_removed_mm3": "保护区去骨 / bone removed in the protected zone (mm³)",
    "fluoro_shots": "透视次数 / fluoroscopy shots",
    "fluoro_time_s": "透视时间 / fluoroscopy time (s)",
}


def metric_label(name: str) -> str:
    """The on-screen label of a metric; the key itself for one not in the table."""
    return METRIC_LABELS.get(name, name)
