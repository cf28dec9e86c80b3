"""Benchmark suites: each trains and scores a set of models under one budget and writes
`docs/results/<suite>.json` with its Markdown table (`bench.common` holds what they share)."""

from bonelift.bench import anatomy, method3, single_frame, training_speed, video, wild

SUITES = {"single-frame": single_frame, "anatomy": anatomy, "video": video, "method3": method3, "wild": wild,
          "training-speed": training_speed}

__all__ = ["SUITES"]
