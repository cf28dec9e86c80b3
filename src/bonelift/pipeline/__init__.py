"""From an ordinary video (or 2D keypoints) to 3D joints, offline: detection, lifting, exports, pictures."""

from bonelift.pipeline.lift import DEFAULT_WEIGHTS, DEMO_CLIP, LiftSummary, lift

__all__ = ["DEFAULT_WEIGHTS", "DEMO_CLIP", "LiftSummary", "lift"]
