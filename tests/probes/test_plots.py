import numpy as np
import pytest
from matplotlib.figure import Figure

from sslprobe import plots
from sslprobe.probes import grid_local_minima


def saved(fig: Figure, path) -> None:
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 1000


def labelled(fig: Figure) -> None:
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_spectrum_plot(tmp_path):
    eigenvalues = np.r_[np.logspace(1, -3, 20), 1e-9, 0.0]
    fig = plots.plot_spectrum(
        {"features": eigenvalues, "embeddings": eigenvalues[::2]},
        value_label="covariance eigenvalue",
        collapse_threshold=1e-4,
    )
    labelled(fig)
    assert fig.axes[0].get_yscale() == "log"
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    for name, values in (("features", eigenvalues), ("embeddings", eigenvalues[::2])):
        drawn = np.asarray(lines[name].get_ydata())
        assert len(drawn) == len(values)
        np.testing.assert_array_equal(drawn[values > 0], values[values > 0])  # zeros sit at a floor on the log axis
        assert (drawn[values == 0] > 0).all()
    # one threshold per curve, in its colour, at threshold x that curve's own largest value
    ax = fig.axes[0]
    curves = [line for line in ax.lines if line.get_linestyle() == "-"]
    thresholds = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(curves) == len(thresholds) == 2
    for curve, threshold in zip(curves, thresholds):
        assert threshold.get_color() == curve.get_color()
        assert threshold.get_ydata()[0] == pytest.approx(1e-4 * np.max(curve.get_ydata()))
    saved(fig, tmp_path / "spectrum.png")


def test_spectrum_heatmap(tmp_path):
    epochs = np.arange(0, 50, 5)
    spectra = np.logspace(0, -6, 16)[None, :] ** (1 + epochs[:, None] / 50)
    fig = plots.plot_spectrum_heatmap(epochs, spectra, value_label="singular value")
    labelled(fig)
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    assert list(fig.axes[0].get_xticks()) == list(epochs)  # one tick per measurement
    saved(fig, tmp_path / "spectrum_heatmap.png")


def test_spectrum_heatmap_of_one_measurement_has_one_integer_tick(tmp_path):
    fig = plots.plot_spectrum_heatmap(np.array([1]), np.logspace(0, -6, 16)[None, :])
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [1.0] and [t.get_text() for t in ax.get_xticklabels()] == ["1"]
    saved(fig, tmp_path / "one.png")


@pytest.mark.parametrize("scale_invariant", [False, True])
def test_landscape_1d_plot_notes_scale_invariance(tmp_path, scale_invariant):
    a = np.linspace(0, 2, 41)
    loss = np.full_like(a, 3.2) if scale_invariant else 5 - 4 * a**2 + 1.8 * a**4
    fig = plots.plot_landscape_1d(a, loss, reference_loss=loss[20], scale_invariant=scale_invariant)
    labelled(fig)
    notes = [text.get_text() for text in fig.axes[0].texts]
    assert any("invariant" in note for note in notes) is scale_invariant
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    np.testing.assert_array_equal(lines["loss at a·W"].get_xdata(), a)
    np.testing.assert_array_equal(lines["loss at a·W"].get_ydata(), loss)
    trained = lines["trained layer (a = 1)"]
    assert list(trained.get_xdata()) == [1.0] and list(trained.get_ydata()) == [loss[20]]
    saved(fig, tmp_path / f"landscape_1d_{scale_invariant}.png")


def test_landscape_2d_plot_marks_minima_and_reference(tmp_path):
    r = np.linspace(0, 2, 41)
    loss = -(r[:, None] ** 2 + 0.5 * r[None, :] ** 2) + 0.4 * (r[:, None] ** 4 + r[None, :] ** 4)
    fig = plots.plot_landscape_2d(r, r, loss)
    labelled(fig)
    ax = fig.axes[0]
    assert "r1" in ax.get_xlabel() and "r2" in ax.get_ylabel()
    markers = {c.get_label(): c.get_offsets() for c in ax.collections
               if c.get_label() in ("local minima on grid", "trained layer (1, 1)")}
    assert len(markers) == 2
    assert len(grid_local_minima(loss)) == 1
    np.testing.assert_array_equal(markers["trained layer (1, 1)"], [[1.0, 1.0]])
    # the minimum of -(r1² + r2²/2) + 0.4 (r1⁴ + r2⁴) is at r1 = √1.25, r2 = √0.625: marked at the nearest grid point
    (r1, r2), = np.asarray(markers["local minima on grid"])
    assert abs(r1 - np.sqrt(1.25)) <= 0.025 and abs(r2 - np.sqrt(0.625)) <= 0.025
    saved(fig, tmp_path / "landscape_2d.png")


def test_landscape_2d_colour_limits_follow_the_trained_point(tmp_path):
    r = np.linspace(0, 2, 21)
    loss = 4 + 0.05 * (r[:, None] - 1) ** 2 + 0.03 * (r[None, :] - 1.2) ** 2
    loss[0, 0] = 50.0  # a normalised loss blows up at the origin
    fig = plots.plot_landscape_2d(r, r, loss)
    near = loss[np.ix_(np.abs(r - 1) <= 0.5 + 1e-12, np.abs(r - 1) <= 0.5 + 1e-12)]
    mesh = fig.axes[0].collections[0]
    assert mesh.get_clim() == pytest.approx((near.min(), near.max()))
    assert "±0.5 of (1, 1)" in fig.axes[1].get_ylabel()  # the colour bar says so
    whole = plots.plot_landscape_2d(r, r, loss, window=None)
    assert whole.axes[0].collections[0].get_clim() == pytest.approx((loss.min(), 50.0))
    saved(fig, tmp_path / "landscape_2d_window.png")


def test_per_class_bar_chart_highlights_rare_classes(tmp_path):
    counts = [4890, 87, 5000, 0, 74, 0, 0, 212, 4788, 4947]
    per_class = [0.9, 0.4, 0.92, 0.1, 0.35, 0.2, None, 0.6, 0.95, 0.91]
    fig = plots.plot_per_class_accuracy(per_class, rare_classes=[1, 3, 4, 5, 6], train_counts=counts)
    labelled(fig)
    bars = fig.axes[0].patches
    assert bars[1].get_facecolor() != bars[0].get_facecolor()
    assert all((bars[i].get_facecolor() == bars[1].get_facecolor()) is (i in (1, 3, 4, 5, 6)) for i in range(10))
    heights = [bar.get_height() for bar in bars]
    np.testing.assert_allclose(heights, [100 * (value or 0.0) for value in per_class])  # percent; no value drawn as 0
    assert "rare in training" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    saved(fig, tmp_path / "per_class.png")


def test_per_class_bar_chart_without_rare_classes_has_no_rare_legend(tmp_path):
    fig = plots.plot_per_class_accuracy([0.5] * 10, rare_classes=[], train_counts=[200] * 10)
    assert fig.axes[0].get_legend() is None
    assert len({bar.get_facecolor() for bar in fig.axes[0].patches}) == 1
    saved(fig, tmp_path / "per_class_balanced.png")
