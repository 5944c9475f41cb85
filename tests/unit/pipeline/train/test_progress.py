"""The MindFormers log parser, exact on a real 4-card fine-tune log and on MindFormers 1.9's format."""

from mathtune_pipeline import progress


def _log_lines(real_fixtures):
    path = real_fixtures / "mindformers-logs" / "finetune_worker_0.log"
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _by_hand(line):
    """The same fields read a different way: cut the line at its separators."""
    body = line[line.index("{ Epoch:"):]
    parts = dict(p.split(":", 1) for p in body[2:].split(", ") if ":" in p)
    epoch, epochs = parts["Epoch"].strip(" []").split("/")
    step, steps = parts["step"].strip(" []").split("/")
    return {"epoch": int(epoch), "epochs": int(epochs), "step": int(step), "steps": int(steps),
            "loss": float(parts["loss"]), "step_time_ms": float(parts["per_step_time"].strip().rstrip("ms")),
            "lr": float(parts["lr"])}


def _rate_by_hand(line):
    tail = line.split(" - INFO - ", 1)[1]
    pct = float(tail.split("%")[0])
    rate = float(tail.split("|")[2].split()[0])
    clock = tail.split("samples/s/p")[1].strip().rstrip("}").strip()
    days = 0
    if "day" in clock:
        days, clock = int(clock.split()[0]), clock.split(", ")[1]
    h, m, s = (int(x) for x in clock.split(":"))
    return pct, rate, days * 86400 + h * 3600 + m * 60 + s


def test_every_progress_line_of_the_real_log(real_fixtures):
    lines = _log_lines(real_fixtures)
    step_lines = [i for i, line in enumerate(lines) if "{ Epoch:[" in line]
    assert len(step_lines) == 585
    parser = progress.ProgressParser()
    steps = [s for line in lines for s in [parser.feed(line)] if s is not None]
    assert len(steps) == 585
    for index, step in zip(step_lines, steps):
        want = _by_hand(lines[index])
        got = {k: getattr(step, k) for k in want}
        assert got == want, lines[index]
        pct, rate, eta = _rate_by_hand(lines[index + 1])
        assert (step.percent, step.samples_per_second, step.eta_seconds) == (pct, rate, eta), lines[index + 1]
    assert parser.finished
    assert parser.trainable_params == 4718592


def test_known_values_of_the_real_log(real_fixtures):
    steps = list(progress.parse_lines(_log_lines(real_fixtures)))
    first, second, last = steps[0], steps[1], steps[-1]
    # The first line carries spinner debris before its timestamp and a multi-day ETA.
    assert (first.epoch, first.step, first.loss, first.step_time_ms) == (1, 2, 1.292, 383209.0)
    assert first.eta_seconds == 5 * 86400 + 4 * 3600 + 19 * 60 + 49
    # docs/contract.md's example progress line is this one.
    assert second.progress_fields() == {"epoch": 1, "epochs": 5, "step": 4, "steps": 234, "loss": 1.361,
                                        "samplesPerSecond": 4.91346, "etaSeconds": 3796}
    assert (last.epoch, last.epochs, last.step, last.steps, last.loss) == (5, 5, 234, 234, 1.086)
    # sink_size 2: the step advances by two a line, 117 lines an epoch.
    assert sum(s.epoch == 3 for s in steps) == 117
    assert {b.step - a.step for a, b in zip(steps, steps[1:]) if a.epoch == b.epoch} == {2}


# MindFormers 1.9 without sink mode (as printed by the CPU profile's training).
LINES_19 = [
    "2026-11-23 10:12:10,091 - mindformers/x/output/log[mindformers/core/callback/callback.py:747] - INFO - "
    "{ Epoch:[  1/  2], step:[    1/   16], loss:[6.262493/6.262493], per_step_time: 1314ms, lr: 0.001, "
    "overflow cond: False, loss_scale: 1.0, global_norm: [0.16832322]",
    "2026-11-23 10:12:10,092 - mindformers/x/output/log[mindformers/core/callback/callback.py:764] - INFO - "
    "   3.1% |█                                                 | 3.04183 samples/s/p  0:00:40 }",
    "2026-11-23 10:12:10,718 - mindformers/x - INFO - { Epoch:[  1/  2], step:[    2/   16], "
    "loss:[6.253108/6.257801], per_step_time: 625ms, lr: 0.0009975923, overflow cond: False, loss_scale: 1.0, "
    "global_norm: [0.12311131]",
    "2026-11-23 10:12:30,762 - mindformers/x[mindformers/trainer/base_trainer.py:1689] - INFO - "
    ".........Training Over!.............",
]


def test_bracketed_loss_and_a_step_without_its_rate_line():
    parser = progress.ProgressParser()
    got = [s for line in LINES_19 for s in [parser.feed(line)] if s is not None]
    assert [(s.step, s.loss, s.avg_loss) for s in got] == [(1, 6.262493, 6.262493), (2, 6.253108, 6.257801)]
    assert got[0].global_norm == 0.16832322 and got[0].eta_seconds == 40 and got[0].samples_per_second == 3.04183
    assert got[1].samples_per_second is None and got[1].eta_seconds is None
    assert parser.finished


def test_parameter_count_both_formats():
    assert progress.parse_trainable_params("INFO - Network Parameters: 4718592.") == 4718592
    assert progress.parse_trainable_params("INFO - Network Parameters: 8 M.") == 8_000_000
    assert progress.parse_trainable_params("no count here") is None


def test_unrelated_lines_are_not_steps():
    for line in ["loss: 1.0", "{ Epoch: 1 }", "   0.3% | | 4.9 samples/s/p  1:03:16 }"]:
        assert progress.parse_step_line(line) is None
    assert list(progress.parse_lines(["   0.3% | | 4.9 samples/s/p  1:03:16 }"])) == []
