"""Panda3D view: the case viewer and the live session scene (one ShowBase: ``SceneView``).

Entry points: ``case_viewer.view_case`` (``osteon case view``), ``session_screenshot.
render_scene_png`` (``osteon sim run --screenshot``), ``snapshot.ViewSnapshot`` and
``SnapshotMailbox`` (what the engine hands the view), ``chunk_mesher.remesh_chunks``.
``snapshot`` and ``chunk_mesher`` load no Panda3D, so the engine may import them freely.
"""
