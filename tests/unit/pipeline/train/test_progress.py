"""The MindFormers log parser, exact on a real 4-card fine-tune log and on MindFormers 1.9's format."""

from mathtune_pipeline import progress


def _log_lines(real_fixtures):
    path = real_fixtures / "mindformers-logs" / "finetune_worker_0.log"
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def test_every_progress_line_of_the_real_log(real_fixtures):
    """What any right reading of the log must give, known without parsing it: 4 cards, 234 steps
    an epoch, a line every 2 steps, 5 epochs (585 lines); each line followed by MindFormers' rate
    line, so every step has a rate and an ETA; the ETA falls to 0 at the last step."""
    lines = _log_lines(real_fixtures)
    parser = progress.ProgressParser()
    steps = [s for line in lines for s in [parser.feed(line)] if s is not None]
    assert [(s.epoch, s.step) for s in steps] == [(e, k) for e in range(1, 6) for k in range(2, 235, 2)]
    assert all(s.epochs == 5 and s.steps == 234 for s in steps)
    assert all(0 < s.loss < 2 and s.step_time_ms > 0 and 0 < s.lr < 1e-3 for s in steps)
    assert all(s.samples_per_second > 0 and s.eta_seconds >= 0 and 0 < s.percent <= 100 for s in steps)
    assert [s.percent for s in steps] == sorted(s.percent for s in steps) and steps[-1].percent == 100.0
    assert steps[-1].eta_seconds == 0
    assert parser.finished
    assert parser.trainable_params == 4718592


def test_lines_read_by_hand(real_fixtures):
    """Three lines from the middle of the real log, their values copied from the text by eye."""
    steps = {(s.epoch, s.step): s for s in progress.parse_lines(_log_lines(real_fixtures))}
    for (epoch, step), (loss, ms, lr) in {(1, 234): (1.001, 3173.0, 9.267714e-05),
                                          (3, 132): (0.743, 3176.0, 5.048437e-05),
                                          (4, 234): (0.515, 3173.0, 1.0209793e-05)}.items():
        got = steps[(epoch, step)]
        assert (got.loss, got.step_time_ms, got.lr) == (loss, ms, lr), (epoch, step)


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


# Each epoch's mean logged loss in the real log, computed outside the project's code:
#   grep "Epoch:\[" finetune_worker_0.log | sed -E 's/.*Epoch:\[ *([0-9]+)\/.*loss: ([0-9.]+),.*/\1 \2/' |
#   awk '{s[$1]+=$2; n[$1]++} END {for (e in s) printf "%s %.4f\n", e, s[e]/n[e]}'
REAL_LOG_EPOCH_MEANS = {1: 0.9906, 2: 0.9254, 3: 0.9041, 4: 0.9061, 5: 0.9135}


def test_each_epochs_mean_loss_of_the_real_log(real_fixtures):
    parser = progress.ProgressParser()
    for line in _log_lines(real_fixtures):
        parser.feed(line)
    parser.flush()
    losses = progress.epoch_losses(parser.steps, parser.finished)
    assert {e: round(v, 4) for e, v in losses.items()} == REAL_LOG_EPOCH_MEANS
    assert progress.epoch_loss_fields(parser.steps, True)["1"] == round(losses[1], 6)


def test_an_epoch_counts_only_once_it_is_complete(real_fixtures):
    """Mid-run (the log cut in epoch 3) the epochs done are 1 and 2; epoch 3's steps so far are no epoch's
    loss. The last step of an epoch, or `Training Over`, completes it."""
    parser = progress.ProgressParser()
    for line in _log_lines(real_fixtures):
        parser.feed(line)
        if parser.steps and (parser.steps[-1].epoch, parser.steps[-1].step) == (3, 100):
            break
    assert sorted(progress.epoch_losses(parser.steps)) == [1, 2]
    assert sorted(progress.epoch_losses(parser.steps, finished=True)) == [1, 2, 3]
    def last_step(loss):
        return progress.Step(epoch=3, epochs=5, step=234, steps=234, loss=loss, avg_loss=None, step_time_ms=1.0,
                             lr=1e-5)

    assert sorted(progress.epoch_losses(parser.steps + [last_step(0.5)])) == [1, 2, 3]
    assert sorted(progress.epoch_losses(parser.steps + [last_step(float("nan"))])) == [1, 2], \
        "a NaN mean is no epoch's loss"
