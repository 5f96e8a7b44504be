"""Rate figures, drawn from the stored rows and ``verdicts.json`` only (never reruns a cell).

One PNG per figure group (the cells' ``figure`` field) and grid, under ``<grid>/figures/``: log-log
axes, for every cell of the group the seed mean of the metric at each horizon (dots), the 10–90 %
band of the metric across seeds (shaded) and, where a slope check was evaluated, the fitted line
over its window (dashed for the mean; for a quantile claim the quantile itself as crosses and its
fit dotted; legend with the slope, its interval and the verdict). One panel per metric used by the
group's checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from verify.figures import figure

from .stats import quantile_band
from .store import ResultStore, row_values

__all__ = ["rate_figures", "draw_group"]

_METRIC_LABEL = {"avg_sq_grad": r"$\frac{1}{T}\sum_t \|\nabla f(x_t)\|_2^2$", "min_sq_grad": r"$\min_t \|\nabla f(x_t)\|_2^2$",
                 "avg_l1_sq": r"$\frac{1}{T}\sum_t \|\nabla f\|_1^2$", "avg_l21_sq": r"$\frac{1}{T}\sum_t \|\nabla f\|_{2,1}^2$"}


def _load_verdicts(directory: Path) -> list[dict]:
    path = directory / "verdicts.json"
    if not path.exists():
        return []
    with open(path) as fh:
        return json.load(fh).get("results", [])


def _slope_fits(results: list[dict]) -> dict[tuple[str, str], list[dict]]:
    fits: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if r.get("kind") == "slope" and "fit" in r:
            fits.setdefault((r["cells"][0], r["metric"]), []).append(r)
    return fits


def draw_group(rows: list[dict], results: list[dict], title: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fits = _slope_fits(results)
    metrics = sorted({r["metric"] for r in results if any(c in {row["key"] for row in rows} for c in r["cells"])}) or [
        "avg_sq_grad"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(9.0, 6.4 * len(metrics)), 4.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        for i, row in enumerate(rows):
            if metric not in row["values"]:
                continue
            color = colors[i % len(colors)]
            T = np.asarray(row["horizons"], float)
            Y = row_values(row, metric)
            mean = Y.mean(axis=1)
            lo, hi = quantile_band(Y, (0.1, 0.9))
            ok = mean > 0
            ax.plot(T[ok], mean[ok], "o-", ms=3, lw=1, color=color, label=row.get("label") or row["key"])
            if row["spec"]["seeds"] > 2:
                band = ok & (lo > 0)
                ax.fill_between(T[band], lo[band], hi[band], color=color, alpha=0.15, lw=0)
            for r in fits.get((row["key"], metric), []):
                f = r["fit"]
                Tw = np.asarray(f["horizons"], float)
                style = "--" if f["statistic"] == "mean" else ":"
                if f["statistic"] != "mean":  # a quantile fit: draw the quantile it was fitted to
                    ax.plot(Tw, f["center"], "x", ms=4, color=color)
                ax.plot(Tw, np.exp(f["intercept"]) * Tw ** f["slope"], style, lw=1.5, color=color,
                        label=f"  {f['statistic']} fit {f['slope']:+.2f} [{f['ci'][0]:+.2f}, {f['ci'][1]:+.2f}] "
                              f"→ {r['verdict']}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("T (horizon)")
        ax.set_ylabel(_METRIC_LABEL.get(metric, metric))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    fig.suptitle(title + "   (dots: seed mean; band: 10–90 % across seeds; dashed: fit of the mean; "
                 "x + dotted: a quantile and its fit)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_dimension(rows: list[dict], title: str, path: Path, level: float = 0.9) -> Path:
    """E3: the (level)-quantile of the metric at the largest horizon against the dimension d, per method and β."""
    import matplotlib.pyplot as plt

    series: dict[tuple[str, float], list[tuple[float, np.ndarray]]] = {}
    for row in rows:
        beta = float(row["spec"]["noise"][1].get("beta", float("nan")))
        d = float(np.prod(row["constants"]["shape"]))
        series.setdefault((row["spec"]["algorithm"], beta), []).append((d, row_values(row, "avg_sq_grad")[-1]))
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    styles = {"adagrad_norm": "o-", "adagrad_coordinate": "s--", "adagrad_subset_norm": "^-."}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    betas = sorted({b for _, b in series})
    for (name, beta), points in sorted(series.items()):
        points.sort(key=lambda p: p[0])
        d = np.array([p[0] for p in points])
        q = np.array([np.quantile(p[1], level) for p in points])
        color = colors[betas.index(beta) % len(colors)]
        ax.plot(d, q, styles.get(name, "o-"), color=color, label=f"{name.replace('adagrad_', '')}, β = {beta:g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("dimension d")
    ax.set_ylabel(f"q{level:g} of " + _METRIC_LABEL["avg_sq_grad"] + " at the largest T")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title + " (E3; colour = β, marker = method)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@figure("rates", results="results/rates", description="log-log rate plots per experiment family, with quantile bands and fits")
def rate_figures(results_dir: Path, out_dir: Path | None) -> list[Path]:
    """Every grid directory under ``results_dir`` (``quick``, ``full``) with stored rows."""
    paths: list[Path] = []
    for grid_dir in sorted(p for p in Path(results_dir).iterdir() if p.is_dir()):
        rows = ResultStore(grid_dir).all_rows()
        if not rows:
            continue
        results = _load_verdicts(grid_dir)
        target = (Path(out_dir) / grid_dir.name) if out_dir else grid_dir / "figures"
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(row.get("figure") or "other", []).append(row)
        for name, members in sorted(groups.items()):
            members.sort(key=lambda r: r["key"])
            keys = {r["key"] for r in members}
            related = [r for r in results if any(c in keys for c in r.get("cells", []))]
            paths.append(draw_group(members, related, f"{grid_dir.name}: {name}", target / f"{name}.png"))
            if name == "dimension_sparsity":
                paths.append(draw_dimension(members, f"{grid_dir.name}: {name}", target / f"{name}_vs_d.png"))
    return paths
