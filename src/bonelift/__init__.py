"""bonelift: anatomy-aware 3D human pose estimation (lifting 2D keypoints to 3D joints)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`bonelift.lift` and `bonelift.LiveLifter` without importing torch and OpenCV on `import bonelift`."""
    if name == "lift":
        from bonelift.pipeline import lift

        return lift
    if name == "LiveLifter":
        from bonelift.pipeline.live import LiveLifter

        return LiveLifter
    raise AttributeError(f"module 'bonelift' has no attribute {name!r}")
