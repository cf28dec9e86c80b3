"""From an ordinary video (or 2D keypoints) to 3D joints: offline (`lift`: detection, lifting, exports, pictures)
and live (`LiveLifter`: one frame in, its 3D out)."""

from bonelift.pipeline.lift import DEFAULT_WEIGHTS, DEMO_CLIP, LiftSummary, lift
from bonelift.pipeline.live import LiveLifter

__all__ = ["DEFAULT_WEIGHTS", "DEMO_CLIP", "LiftSummary", "LiveLifter", "lift"]
