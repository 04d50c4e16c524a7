"""The simulation core: CT phantoms, case builder, voxel engine, Panda3D view."""
