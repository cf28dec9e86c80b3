

def test_bench_video_writes_report(tmp_path, monkeypatch) -> None:
    from bonelift import bench_video
    from bonelift.temporal import VideoTrainConfig

    train_seqs, test_seqs = _sequences(3, 30, seed=0), _sequences(2, 25, seed=1)
    monkeypatch.setattr(bench_video, "load_split", lambda cfg, subjects: train_seqs if subjects == cfg.train_subjects else test_seqs)
    base = VideoTrainConfig(model=_config("tcn", length_frames=5), epochs=1, batch_size=16, stride=3, out_dir=str(tmp_path / "runs"),
                            device="cpu")
    report = tmp_path / "bench.md"
    rows = bench_video.run_benchmark(base, ["tcn", "af", "bone-causal"], report, "bonelift bench-video ...", latency_frames=20,
                                     progress=False)
    text = report.read_text()
    assert "| AF |" in text and "bonelift bench-video ..." in text and report.with_suffix(".json").is_file()
    assert rows["bone-causal"]["latency_ms"] > 0 and "latency_ms" not in rows["tcn"]
    with pytest.raises(Exception, match="unknown benchmark row"):
        bench_video.run_benchmark(base, ["nope"], report, "x")
