"""The EDA figures: each function draws one PNG from a prepared table and returns its path."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lsdc import schema  # noqa: E402
from lsdc.eda import stats  # noqa: E402

log = logging.getLogger(__name__)

GRADE_COLORS: dict[str, str] = {
    "Normal/Mild": "#59a14f", "Moderate": "#f28e2b", "Severe": "#e15759", stats.MISSING: "#bab0ac",
}
LEVEL_COLORS: dict[str, str] = {
    lv: matplotlib.colors.to_hex(matplotlib.colormaps["viridis"](k / 4 * 0.9))
    for k, lv in enumerate(schema.LEVELS)}
DPI = 110


def short_label(column: str) -> str:
    """'left_neural_foraminal_narrowing_l4_l5' -> 'L foram L4/L5' (axis labels)."""
    lab = schema.label_of_column(column)
    side = {"left": "L ", "right": "R ", None: ""}[lab.side]
    family = {"spinal": "canal", "foraminal": "foram", "subarticular": "subart"}[lab.family]
    return f"{side}{family} {lab.level}"


def subplots(*args, **kwargs) -> tuple[plt.Figure, object]:
    """plt.subplots with constrained layout: labels and outside legends fit without a costly
    tight bounding box at save time."""
    return plt.subplots(*args, layout="constrained", **kwargs)


def save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    plt.close(fig)
    log.debug("wrote %s", path)
    return path


def no_data(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def heatmap(ax: plt.Axes, frame: pd.DataFrame, cmap: str | matplotlib.colors.Colormap,
            vmin: float, vmax: float, fmt: str | None = None, xticklabels=None,
            yticklabels=None, colorbar: str | None = None, fontsize: float = 8) -> None:
    """A labelled matrix (imshow; cells annotated with `fmt` when given; NaN cells blank).
    Lighter and much faster than seaborn's heatmap for the few dozen matrices here."""
    values = frame.to_numpy(dtype=float)
    cmap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    image = ax.imshow(values, cmap=cmap.with_extremes(bad="#f0f0f0"), vmin=vmin, vmax=vmax,
                      aspect="auto", interpolation="nearest")
    ax.set_xticks(range(values.shape[1]),
                  frame.columns if xticklabels is None else xticklabels, rotation=90)
    ax.set_yticks(range(values.shape[0]), frame.index if yticklabels is None else yticklabels)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if fmt:
        norm = matplotlib.colors.Normalize(vmin, vmax)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                r, g, b, _ = cmap(norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=fontsize,
                        color="white" if dark else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=colorbar, shrink=0.8)


def _grade_legend(fig: plt.Figure, grades) -> None:
    handles = [matplotlib.patches.Patch(color=GRADE_COLORS[g], label=g) for g in grades]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)


def _stacked_bars(ax: plt.Axes, counts: pd.DataFrame, shares: bool = False) -> None:
    table = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0) if shares else counts
    bottom = np.zeros(len(table))
    x = np.arange(len(table))
    for grade in table.columns:
        values = table[grade].fillna(0).to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, color=GRADE_COLORS[grade], label=grade, width=0.75)
        if shares:
            for xi, (b, v) in enumerate(zip(bottom, values)):
                if v >= 0.06:
                    ax.text(xi, b + v / 2, f"{100 * v:.0f}%", ha="center", va="center", fontsize=8)
        bottom += values
    ax.set_xticks(x)


def grade_distribution(counts: pd.DataFrame, path: Path, title: str) -> Path:
    """Counts (left) and shares (right) of each grade per row of `counts` (a GRADES table)."""
    fig, axes = subplots(1, 2, figsize=(13, 4.6))
    if counts.to_numpy().sum() == 0:
        for ax in axes:
            no_data(ax, "no label cells")
        return save(fig, path)
    names = [textwrap.fill(str(i), 16) for i in counts.index]
    for ax, shares in zip(axes, (False, True)):
        _stacked_bars(ax, counts, shares=shares)
        ax.set_xticklabels(names, fontsize=8)
        ax.set_ylabel("share of label cells" if shares else "label cells")
    axes[1].set_ylim(0, 1)
    _grade_legend(fig, counts.columns)
    fig.suptitle(title)
    return save(fig, path)


def grades_by_level(counts: pd.DataFrame, path: Path) -> Path:
    """One panel per condition: grade counts per level (counts indexed by condition, level)."""
    fig, axes = subplots(1, len(schema.CONDITIONS), figsize=(17, 3.8), sharey=True)
    for ax, condition in zip(axes, schema.CONDITIONS):
        sub = counts.loc[condition]
        if sub.to_numpy().sum() == 0:
            no_data(ax, "no label cells")
        else:
            _stacked_bars(ax, sub)
            ax.set_xticklabels(sub.index, fontsize=8)
        ax.set_title(condition, fontsize=9)
    axes[0].set_ylabel("label cells")
    _grade_legend(fig, counts.columns)
    return save(fig, path)


def grade_share_heatmaps(shares: pd.DataFrame, path: Path) -> Path:
    """Share of each grade among graded cells, condition x level, one heatmap per grade."""
    fig, axes = subplots(1, 3, figsize=(17, 4))
    for k, (ax, grade) in enumerate(zip(axes, schema.SEVERITIES)):
        table = shares[grade].unstack("level").reindex(index=list(schema.CONDITIONS),
                                                       columns=list(schema.LEVELS))
        top = float(np.nanmax(table.to_numpy())) if table.notna().any().any() else 1.0
        heatmap(ax, 100 * table, "YlOrRd",
                0, 100 * top, fmt=".1f", colorbar="% of graded cells",
                yticklabels=list(schema.CONDITIONS) if k == 0 else [""] * len(table))
        ax.tick_params(axis="x", rotation=0)
        ax.set_title(f"{grade} (%)")
    return save(fig, path)


def missing_labels(matrix: pd.DataFrame, wide: pd.DataFrame, path: Path,
                   max_studies: int = 200) -> Path:
    """Missing cells per condition x level (left) and which labels each study misses (right)."""
    fig, axes = subplots(1, 2, figsize=(16, 5.5), gridspec_kw={"width_ratios": [1, 1.6]})
    counts = matrix.fillna(0).astype(int)
    heatmap(axes[0], counts, "Reds", 0, max(1, int(counts.to_numpy().max())), fmt=".0f")
    axes[0].tick_params(axis="x", rotation=0)
    axes[0].set_title("missing label cells")
    missing = wide.isna()
    rows = missing[missing.any(axis=1)]
    if rows.empty:
        no_data(axes[1], "no study has a missing label")
    else:
        shown = rows.head(max_studies)
        cmap = matplotlib.colors.ListedColormap(["#f4f4f4", "#e15759"])
        heatmap(axes[1], shown.astype(int), cmap, 0, 1,
                xticklabels=[short_label(c) for c in shown.columns],
                yticklabels=shown.index if len(shown) <= 40 else [])
        axes[1].tick_params(axis="x", labelsize=7)
        extra = f" (first {max_studies} of {len(rows)})" if len(rows) > max_studies else ""
        axes[1].set_title(f"studies with a missing label: {len(rows)}{extra}; red = missing")
        axes[1].set_ylabel("study")
    return save(fig, path)


def correlation_all(corr: pd.DataFrame, path: Path) -> Path:
    """25 x 25 Spearman correlation of severity codes."""
    fig, ax = subplots(figsize=(11, 9.5))
    if corr.isna().all().all():
        no_data(ax, "not enough graded studies for correlations")
        return save(fig, path)
    names = [short_label(c) for c in corr.columns]
    heatmap(ax, corr, "coolwarm", -1, 1, xticklabels=names, yticklabels=names,
            colorbar="Spearman rho")
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    for k in range(5, len(names), 5):  # separate the conditions
        ax.axhline(k - 0.5, color="white", lw=2)
        ax.axvline(k - 0.5, color="white", lw=2)
    ax.set_title("Correlation of severity grades between all labels (grey: undefined)")
    return save(fig, path)


def correlation_per_condition(corrs: dict[str, pd.DataFrame], path: Path) -> Path:
    """One annotated level x level Spearman matrix per condition."""
    fig, axes = subplots(1, len(corrs), figsize=(19, 4))
    for ax, (condition, corr) in zip(axes, corrs.items()):
        if corr.isna().all().all():
            no_data(ax, "not enough data")
        else:
            levels = [schema.label_of_column(c).level for c in corr.columns]
            heatmap(ax, corr, "coolwarm", -1, 1, fmt=".2f", xticklabels=levels,
                    yticklabels=levels)
            ax.set_aspect("equal")
            ax.tick_params(axis="x", rotation=0, labelsize=8)
        ax.set_title(condition, fontsize=9)
    return save(fig, path)


def integer_histograms(panels: dict[str, pd.Series], path: Path, xlabel: str,
                       mark: int | None = None, ylabel: str = "studies") -> Path:
    """Bar chart of the distribution of each integer series (one panel each)."""
    fig, axes = subplots(1, len(panels), figsize=(6.2 * len(panels), 3.8), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels.items()):
        if len(values) == 0:
            no_data(ax, "no studies")
        else:
            counts = values.value_counts().sort_index()
            lo, hi = int(min(counts.index.min(), mark if mark is not None else 10**9)), \
                int(max(counts.index.max(), mark if mark is not None else -1))
            counts = counts.reindex(range(lo, hi + 1), fill_value=0)
            bars = ax.bar(counts.index, counts.values, color="#4e79a7", width=0.8)
            if len(counts) <= 30:
                ax.bar_label(bars, labels=[str(v) if v else "" for v in counts.values], fontsize=7)
            if mark is not None:
                ax.axvline(mark, color="#e15759", ls="--", lw=1)
            ax.set_xlim(lo - 0.7, hi + 0.7)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
    return save(fig, path)


def description_shares(counts: pd.DataFrame, path: Path) -> Path:
    """Horizontal bars of series per description, one column per split, labelled with shares."""
    fig, ax = subplots(figsize=(8, 0.8 + 0.7 * max(len(counts), 1)))
    if counts.to_numpy().sum() == 0:
        no_data(ax, "no series")
        return save(fig, path)
    shares = counts / counts.sum()
    counts.plot.barh(ax=ax, color=["#4e79a7", "#76b7b2"][: counts.shape[1]], width=0.8)
    for container, split in zip(ax.containers, counts.columns):
        labels = [f"{n} ({100 * s:.1f}%)" for n, s in zip(counts[split], shares[split])]
        ax.bar_label(container, labels=labels, fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("series")
    ax.set_ylabel("")
    ax.set_xlim(0, counts.to_numpy().max() * 1.3)
    ax.legend(title="split", fontsize=8, frameon=False)
    return save(fig, path)


def _coordinate_axes(norm: pd.DataFrame) -> tuple[pd.DataFrame, str, str, bool]:
    """Use normalised coordinates when image sizes are known, else raw pixels."""
    if norm["nx"].notna().any():
        return norm.dropna(subset=["nx", "ny"]), "nx", "ny", True
    return norm.dropna(subset=["x", "y"]), "x", "y", False


def coords_scatter(norm: pd.DataFrame, path: Path, hue: str, max_points: int, seed: int) -> Path:
    """One panel per condition: coordinates coloured by 'level' or 'grade' (image orientation)."""
    data, xc, yc, normalised = _coordinate_axes(norm)
    if len(data) > max_points:
        data = data.sample(max_points, random_state=seed)
    palette = LEVEL_COLORS if hue == "level" else GRADE_COLORS
    draw_order = list(palette) if hue == "level" else [stats.MISSING, *schema.SEVERITIES]
    fig, axes = subplots(1, len(schema.CONDITIONS), figsize=(19, 4.9), sharex=normalised,
                             sharey=normalised)
    for ax, condition in zip(axes, schema.CONDITIONS):
        sub = data[data["condition"] == condition]
        if sub.empty:
            no_data(ax, "no coordinates")
        for key in draw_order:  # rarer grades last so they are not buried
            part = sub[sub[hue] == key]
            if len(part):
                common = hue == "grade" and key in (schema.SEVERITIES[0], stats.MISSING)
                ax.scatter(part[xc], part[yc], s=5 if common else 8, alpha=0.35 if common else 0.8,
                           color=palette[key], label=key, lw=0)
        if normalised:
            ax.set_xlim(0, 1)
            ax.set_ylim(1, 0)
        else:
            ax.invert_yaxis()
        ax.set_title(f"{condition}\n({schema.DESCRIPTION_OF_PLANE[schema.PLANE_OF_CONDITION[condition]]})",
                     fontsize=9)
        ax.set_xlabel("x / cols" if normalised else "x (pixels)")
    axes[0].set_ylabel("y / rows" if normalised else "y (pixels)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in palette.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    return save(fig, path)


def coords_density(norm: pd.DataFrame, path: Path, bins: int = 32) -> Path:
    """Condition x level mosaic of 2-D histograms of coordinate positions (each tile scaled to
    its own maximum, so rare labels stay visible); one axes keeps it fast to draw."""
    data, xc, yc, normalised = _coordinate_axes(norm)
    x_hi = 1.0 if normalised else float(data[xc].max()) + 1 if len(data) else 1.0
    y_hi = 1.0 if normalised else float(data[yc].max()) + 1 if len(data) else 1.0
    gap = 2
    n_c, n_l = len(schema.CONDITIONS), len(schema.LEVELS)
    mosaic = np.full((n_c * (bins + gap), n_l * (bins + gap)), np.nan)
    counts = np.zeros((n_c, n_l), dtype=int)
    for i, condition in enumerate(schema.CONDITIONS):
        for j, level in enumerate(schema.LEVELS):
            sub = data[(data["condition"] == condition) & (data["level"] == level)]
            counts[i, j] = len(sub)
            hist, _, _ = np.histogram2d(sub[yc], sub[xc], bins=bins, range=[[0, y_hi], [0, x_hi]])
            tile = hist / hist.max() if hist.max() > 0 else np.zeros_like(hist)
            r, c = i * (bins + gap), j * (bins + gap)
            mosaic[r:r + bins, c:c + bins] = np.where(tile > 0, tile, 0.0)
    fig, ax = subplots(figsize=(11, 10))
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="white", under="#f2f2f2")
    ax.imshow(mosaic, cmap=cmap, vmin=1e-9, vmax=1, interpolation="nearest")  # empty bins: under
    centers = lambda n: [k * (bins + gap) + bins / 2 - 0.5 for k in range(n)]  # noqa: E731
    ax.set_xticks(centers(n_l), schema.LEVELS)
    ax.set_yticks(centers(n_c), [c.replace(" ", "\n", 1) for c in schema.CONDITIONS], fontsize=9)
    ax.xaxis.tick_top()
    for i in range(n_c):
        for j in range(n_l):
            ax.text(j * (bins + gap) + 1, i * (bins + gap) + bins - 2, f"n={counts[i, j]}",
                    fontsize=7, color="#1f77b4")
    ax.set_title("Coordinate density per condition (rows) and level (columns); each tile spans "
                 + ("x / cols and y / rows from 0 to 1" if normalised else
                    f"0..{x_hi:.0f} x 0..{y_hi:.0f} pixels") + ", image orientation",
                 fontsize=10, pad=28)
    for side in ax.spines.values():
        side.set_visible(False)
    return save(fig, path)


def image_sizes(sizes: pd.DataFrame, path: Path, top: int = 10) -> Path:
    """Per series description: the most common image sizes (rows x cols) and their counts."""
    groups = list(sizes.groupby("series_description", sort=False))
    fig, axes = subplots(1, max(len(groups), 1), figsize=(5.5 * max(len(groups), 1), 4),
                             squeeze=False)
    if not groups:
        no_data(axes[0, 0], "no image sizes")
    for ax, (desc, group) in zip(axes[0], groups):
        shown = group.head(top)
        ax.barh(shown["size"], shown["n_series"], color="#4e79a7")
        ax.invert_yaxis()
        ax.set_title(f"{desc} ({group['n_series'].sum()} series)", fontsize=10)
        ax.set_xlabel("series")
    axes[0, 0].set_ylabel("rows x cols")
    return save(fig, path)
