"""Per-axis windows: the arithmetic of ops, composition, union and phases, by hand."""

from fractions import Fraction

import pytest

from ganrf.design.window import Window, WindowError


def test_a_chain_of_kernels_is_the_notes_recurrence():
    # conv5s2 (pad 2) twice: rf 5 then (5 - 1) * 2 + 5 = 13, jump 4, padding 2 + 2 * 2 = 6
    w = Window.identity().then(Window.kernel(5, 2, 1, 2)).then(Window.kernel(5, 2, 1, 2))
    assert (w.size, w.jump, w.padding) == (13, 4, 6)
    assert w.at(3) == frozenset(range(12 - 6, 12 - 6 + 13))


def test_dilation_on_the_image_leaves_gaps_the_span_counts():
    w = Window.identity().then(Window.kernel(3, 1, 2, 2))
    assert w.at(0) == frozenset({-2, 0, 2}) and w.size == 5


def test_union_keeps_each_branch_offset():
    a = Window.identity().then(Window.kernel(3, pad_before=0))  # o .. o+2
    b = Window.identity().then(Window.kernel(5, pad_before=4))  # o-4 .. o
    u = a.union(b)
    assert u.at(0) == frozenset(range(-4, 3)) and u.size == 7 and u.padding == 4
    # taking the larger branch instead would say 5, starting at -4: not what a unit sees
    assert b.size == 5


def test_union_of_different_rates_refused():
    with pytest.raises(WindowError, match="advance by 2 and 1"):
        Window.kernel(3, 2).union(Window.kernel(3, 1))


def test_nearest_upsampling_then_even_conv_gives_two_rfs():
    w = Window.identity().then(Window.kernel(3, 1, 1, 1)).then(Window.resize(8, 16, "nearest"))
    w = w.then(Window.kernel(4, 1, 1, 1))
    assert (w.period, w.advance, w.jump) == (2, 1, Fraction(1, 2))
    assert w.sizes == (5, 4) and (w.size_min, w.size) == (4, 5)
    assert w.at(4) == frozenset(range(0, 5)) and w.at(5) == frozenset(range(1, 5))


def test_bilinear_taps_and_zero_weight_taps():
    # x2: output 2m reads m-1 (1/4) and m (3/4); 2m+1 reads m (3/4) and m+1 (1/4)
    assert Window.resize(4, 8, "linear").taps == (frozenset({-1, 0}), frozenset({0, 1}))
    # x3: the middle phase lands exactly on m: its neighbour has weight 0, unseen
    assert Window.resize(4, 12, "linear").taps[1] == frozenset({0})
    with pytest.raises(WindowError, match="integer factor"):
        Window.resize(4, 6, "nearest")


def test_stride_after_upsampling_normalises_back():
    w = Window.identity().then(Window.resize(8, 16, "nearest")).then(Window.kernel(2, 2))
    assert (w.period, w.advance, w.taps) == (1, 1, (frozenset({0}),))


def test_transposed_conv_phases():
    # k4 s2 p1: output 2m reads inputs m-1, m; 2m+1 reads m, m+1
    t = Window.transposed(4, 2, 1, 1)
    assert t.taps == (frozenset({-1, 0}), frozenset({0, 1}))
    with pytest.raises(WindowError, match="see no input"):
        Window.transposed(1, 2)


def test_uneven_adaptive_pool():
    # PyTorch: 5 -> 3 pools [0, 2), [1, 4), [3, 5)
    w = Window.adaptive(5, 3)
    assert [sorted(w.at(i)) for i in range(3)] == [[0, 1], [1, 2, 3], [3, 4]]
    assert Window.adaptive(16, 4) == Window.kernel(4, 4)
