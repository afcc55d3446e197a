"""The one progress helper: lines when due, rate and ETA from this run's own pace; the report's intervals."""
import io

import pytest

from evals.progress import Progress as EvalProgress
from hrm_jax import report
from hrm_jax.progress import Progress, format_duration


def test_progress_prints_when_due_with_rate_and_eta():
    now = [100.0]
    out = io.StringIO()
    p = Progress("step", 100, done=20, interval_s=30, stream=out, clock=lambda: now[0], rate_scale=1000,
                 rate_unit="tokens/s")
    now[0] = 110.0
    assert p.update(30, loss=2.5)  # the first update always prints
    assert "step 30/100" in out.getvalue() and "loss 2.5" in out.getvalue()
    assert "1000 tokens/s" in out.getvalue() and "ETA 1m10s" in out.getvalue()  # 10 steps in 10 s since start
    now[0] = 120.0
    assert not p.update(40)  # 10 s after the last line: not due
    now[0] = 141.0
    assert p.update(50)
    now[0] = 142.0
    assert p.update(100)  # the end always prints, without an ETA
    assert "ETA" not in out.getvalue().splitlines()[-1]


def test_eval_progress_shows_the_pass_rate():
    out = io.StringIO()
    p = EvalProgress("mbpp_test", 10, done=2, stream=out)
    p.update(4, 1, 4)
    assert "[mbpp_test] 4/10 tasks" in out.getvalue() and "passed 1/4 (25.0%)" in out.getvalue()


def test_format_duration():
    assert [format_duration(s) for s in (5, 65, 7260, None)] == ["5s", "1m05s", "2h01m", "?"]


def test_wilson_interval_and_pass_at_k_interval():
    low, high = report.wilson_interval(0, 3)
    assert low == 0.0 and high == pytest.approx(0.5615, abs=1e-4)
    low, high = report.wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    est, low, high = report.pass_at_k_interval([(1, 1), (1, 0), (1, 0), (1, 1)], 1)
    assert est == 0.5 and (low, high) == report.wilson_interval(2, 4)
    est, low, high = report.pass_at_k_interval([(4, 4), (4, 0), (4, 2), (4, 2)], 2)
    assert est == pytest.approx((1 + 0 + 5 / 6 + 5 / 6) / 4) and low <= est <= high
