"""LTTB on the server: the shape survives, the ends are kept, edge cases do not crash or mislead."""

from __future__ import annotations

import math

import pytest

from kamado.core.downsample import lttb_indices, thin_series


def _spiky(n: int) -> tuple[list[float], list[float]]:
    xs = [float(i) for i in range(n)]
    ys = [math.sin(i / 500) for i in range(n)]
    ys[12_345] = 50.0  # a spike a stride would miss
    ys[67_890] = -50.0  # and a dip
    return xs, ys


def test_keeps_ends_peaks_and_order() -> None:
    xs, ys = _spiky(100_000)
    kept = lttb_indices(xs, ys, 1000)
    assert len(kept) == 1000
    assert kept[0] == 0 and kept[-1] == 99_999
    assert kept == sorted(set(kept)), "indices must be strictly ascending"
    assert 12_345 in kept and 67_890 in kept
    # The thinned curve spans the same range as the full one.
    assert max(ys[i] for i in kept) == 50.0 and min(ys[i] for i in kept) == -50.0


def test_fewer_points_than_threshold_returns_all() -> None:
    assert lttb_indices([0, 1, 2], [5.0, 4.0, 3.0], 10) == [0, 1, 2]
    assert lttb_indices([0, 1, 2], [5.0, 4.0, 3.0], 3) == [0, 1, 2]
    assert lttb_indices([], [], 5) == []
    assert lttb_indices([7], [1.0], 2) == [0]


def test_two_points_keeps_the_ends_and_less_is_refused() -> None:
    assert lttb_indices(list(range(10)), [float(i) for i in range(10)], 2) == [0, 9]
    with pytest.raises(ValueError, match="at least 2"):
        lttb_indices(list(range(10)), [0.0] * 10, 1)
    with pytest.raises(ValueError, match="differ in length"):
        lttb_indices([0, 1], [0.0], 2)


def test_nan_values_do_not_poison_the_choice() -> None:
    n = 1000
    ys = [float("nan") if i % 3 == 0 and 0 < i < n - 1 else float(i % 7) for i in range(n)]
    ys[500] = 99.0
    kept = lttb_indices(list(range(n)), ys, 50)
    assert kept[0] == 0 and kept[-1] == n - 1 and len(kept) == 50
    assert 500 in kept
    # A NaN is only kept where a bucket holds nothing else; here every bucket has finite points.
    assert all(math.isfinite(ys[i]) for i in kept)


def test_all_nan_bucket_keeps_a_gap_and_stays_sane() -> None:
    ys = [1.0] * 10 + [float("nan")] * 80 + [2.0] * 10
    kept = lttb_indices(list(range(100)), ys, 12)
    assert len(kept) == 12 and kept == sorted(set(kept))
    assert any(math.isnan(ys[i]) for i in kept), "a run of gaps stays visible as a gap"


def test_leading_nan_and_duplicates() -> None:
    ys = [float("nan")] + [3.0] * 500 + [4.0]
    kept = lttb_indices([0.0] * 502, ys, 10)  # every x the same, every y the same: duplicates everywhere
    assert len(kept) == 10 and kept[0] == 0 and kept[-1] == 501
    assert kept == sorted(set(kept))


def test_thin_series_per_key_keeps_input_order_positions_and_totals() -> None:
    keys, steps, values = [], [], []
    for i in range(3000):  # interleaved: loss has steps, acc (from MetricDefinitions) has none
        keys.append("loss")
        steps.append(i * 10)
        values.append(1.0 / (i + 1))
        if i % 3 == 0:
            keys.append("acc")
            steps.append(None)
            values.append(i / 3000)
    thin = thin_series(keys, steps, values, 100)
    assert thin.totals == {"loss": 3000, "acc": 1000}
    assert thin.kept == sorted(thin.kept)
    by_key = {k: [p for i, p in zip(thin.kept, thin.position, strict=True) if keys[i] == k] for k in ("loss", "acc")}
    assert len(by_key["loss"]) == 100 and len(by_key["acc"]) == 100
    assert by_key["acc"][0] == 0 and by_key["acc"][-1] == 999  # positions within the series, ends kept
    assert by_key["loss"][-1] == 2999


def test_thin_series_short_series_untouched() -> None:
    thin = thin_series(["a", "b", "a"], [1, None, 2], [0.5, 0.25, 0.125], 10)
    assert thin.kept == [0, 1, 2] and thin.position == [0, 0, 1] and thin.totals == {"a": 2, "b": 1}
