"""bonelift: anatomy-aware 3D human pose estimation (lifting 2D keypoints to 3D joints)."""

__version__ = "0.1.0"
