"""Case building: CT series -> isotropic voxel bone with density, zone labels and meshes."""
