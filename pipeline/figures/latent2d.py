"""Figure 4: 2-D latent spaces of jointly trained mixture priors, and how components align with classes.

For each model (VampPrior and GMM with d_z = 2, LaDDer with d_t = 2): the encodings of up to
``max_points`` training images coloured by class, the mixture's components as 2-sigma
ellipses, and the adjusted Rand index and normalised mutual information between each point's
most-responsible component and its label. LaDDer is drawn in t-space: t = mean of q(t|z) at
the encoder mean, its components those of the fitted hyper prior p(t) (Sec. 3.2).

Those component counts differ between priors (LaDDer's fitted mixture keeps a handful, the GMM
and the VampPrior tens), and the adjusted Rand index moves with the count alone. So the table
also scores every prior like with like (claim C8): ``ari_classes`` / ``nmi_classes`` are the
alignment of a Gaussian mixture with exactly K = number of classes components, fitted to the
same points in the space each prior models (z, or LaDDer's t) (``class_clusters``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pipeline.figures.style import CLASS_CMAP, COMPONENT_COLOUR, PANEL_WIDTH, dataset_title, method_label, plt, save_figure, style, write_table

ACTIVE_WEIGHT = 1e-2  # a component is drawn when its weight exceeds this (as prior_fit.jsonl's n_active)
TABLE_COLUMNS = ("dataset", "method", "seed", "ari", "nmi", "space", "n_points", "n_active", "ari_classes", "nmi_classes", "n_classes")
SUMMARY_METRICS = ("ari", "nmi", "ari_classes", "nmi_classes")
SUMMARY_COLUMNS = ("dataset", "method", "n_seeds", *(f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "std")))
CLASS_CLUSTER_INITS = 3  # EM restarts of the K = classes mixture (the best likelihood is kept)
CLASS_NAMES = {
    "fashion_mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
}


@dataclass
class Components:
    """A Gaussian mixture in the space the points are drawn in: log_weights (M,), means (M, d),
    scale_tril (M, d, d) (Cholesky factors of the covariances); space 'z' or 't'."""

    log_weights: torch.Tensor
    means: torch.Tensor
    scale_tril: torch.Tensor
    space: str

    @property
    def active(self) -> torch.Tensor:
        """(M,) bool: weight above ACTIVE_WEIGHT (all of them for uniform mixtures)."""
        return self.log_weights.exp() > min(ACTIVE_WEIGHT, 0.5 / len(self.log_weights))


def _standard_normal(d: int, space: str) -> Components:
    return Components(torch.zeros(1), torch.zeros(1, d), torch.eye(d)[None], space)


@torch.no_grad()
def latent_components(prior) -> Components:
    """The mixture a prior defines in its drawing space, read through its public attributes:
    prior-VAE priors (hierarchical, LaDDer) -> p(t) in t-space; the EM or gradient GMM and
    the VampPrior (pseudo-inputs' posteriors q(z|u_k), weights 1/K) -> z-space; else N(0, I)."""
    if hasattr(prior, "vae"):  # prior VAE: draw in t-space
        mixture = getattr(prior, "mixture", None)
        if mixture is None:
            return _standard_normal(prior.d_t, "t")  # hierarchical: p(t) = N(0, I)
        return Components(mixture.weights.log(), mixture.means, mixture.scale_tril, "t")
    if hasattr(prior, "mixture"):  # EM GMM
        m = prior.mixture
        return Components(m.weights.log(), m.means, m.scale_tril, "z")
    if hasattr(prior, "components"):  # VampPrior: q(z|u_k), uniform weights
        mean, std = prior.components()  # (K, d), (K, d)
        k = len(mean)
        return Components(torch.full((k,), -math.log(k)), mean, torch.diag_embed(std), "z")
    if hasattr(prior, "weight_logits"):  # gradient-trained diagonal GMM
        return Components(torch.log_softmax(prior.weight_logits, 0), prior.means, torch.diag_embed(torch.exp(0.5 * prior.log_var)), "z")
    return _standard_normal(prior.d_z, "z")


@torch.no_grad()
def drawing_points(prior, z_mean: torch.Tensor) -> torch.Tensor:
    """The points drawn: z (the encoder means) or, for a prior VAE, t = mean of q(t|z) at them."""
    if hasattr(prior, "vae"):
        return prior.vae.encode(z_mean)[0]  # (N, d_t)
    return z_mean  # (N, d_z)


def most_responsible(points: torch.Tensor, comps: Components) -> torch.Tensor:
    """argmax_m [log w_m + log N(x; mu_m, Sigma_m)] for points (N, d) -> (N,) component index."""
    p = points.double()
    dist = torch.distributions.MultivariateNormal(comps.means.double(), scale_tril=comps.scale_tril.double())
    log_resp = dist.log_prob(p[:, None, :]) + comps.log_weights.double()  # (N, M)
    return log_resp.argmax(dim=1)  # (N,)


def alignment_scores(assignment, labels) -> dict[str, float]:
    """Adjusted Rand index and normalised mutual information (scikit-learn, arithmetic mean
    normalisation) between component assignments and class labels."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    a, y = np.asarray(assignment), np.asarray(labels)
    return {"ari": float(adjusted_rand_score(y, a)), "nmi": float(normalized_mutual_info_score(y, a))}


def class_clusters(points: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """ARI and NMI (``alignment_scores``) of a Gaussian mixture with K = number of classes
    components (full covariances, EM by scikit-learn, CLASS_CLUSTER_INITS restarts) fitted to
    ``points`` (N, d), argmax assignment: the same cluster count for every prior.
    -> {"ari_classes", "nmi_classes", "n_classes"}"""
    from sklearn.mixture import GaussianMixture

    k = int(torch.unique(labels).numel())
    if k < 2 or len(points) <= k:
        return {"ari_classes": math.nan, "nmi_classes": math.nan, "n_classes": k}
    x = points.detach().double().cpu().numpy()
    assignment = GaussianMixture(k, covariance_type="full", n_init=CLASS_CLUSTER_INITS, random_state=int(seed)).fit_predict(x)
    scores = alignment_scores(assignment, labels.cpu().numpy())
    return {"ari_classes": scores["ari"], "nmi_classes": scores["nmi"], "n_classes": k}


def ellipse_2sigma(mean: torch.Tensor, scale_tril: torch.Tensor):
    """The 2-sigma ellipse of N(mean, L L^T) (2-D) as a matplotlib patch."""
    from matplotlib.patches import Ellipse

    cov = (scale_tril @ scale_tril.T).double().numpy()  # (2, 2)
    eigval, eigvec = np.linalg.eigh(cov)  # ascending
    angle = math.degrees(math.atan2(eigvec[1, 1], eigvec[0, 1]))  # direction of the major axis
    width, height = 2 * 2 * math.sqrt(eigval[1]), 2 * 2 * math.sqrt(eigval[0])  # full axes = 2 x (2 sigma)
    return Ellipse(tuple(mean.double().tolist()), width, height, angle=angle, fill=False, edgecolor=COMPONENT_COLOUR, linewidth=0.7)


@dataclass
class LatentPanel:
    """What one Figure 4 panel draws and what its row in the table holds."""

    dataset: str
    method: str
    seed: int
    points: torch.Tensor  # (N, 2)
    labels: torch.Tensor  # (N,)
    components: Components
    scores: dict


def latent_panel(prior, z_mean: torch.Tensor, labels: torch.Tensor, dataset: str, method: str, seed: int) -> LatentPanel:
    """Points, components and ARI/NMI for one trained model's encodings (z_mean (N, d_z))."""
    points = drawing_points(prior, z_mean).cpu()  # (N, 2)
    c = latent_components(prior)
    comps = Components(c.log_weights.cpu(), c.means.cpu(), c.scale_tril.cpu(), c.space)
    if points.shape[1] != 2:
        raise ValueError(f"Figure 4 needs a 2-D drawing space; {method} on {dataset} (seed {seed}) has "
                         f"{points.shape[1]}-D {comps.space} (train the 'd_z2' / 'd_t2' variants)")
    assignment = most_responsible(points, comps)
    scores = {**alignment_scores(assignment, labels), **class_clusters(points, labels, seed)}
    return LatentPanel(dataset, method, seed, points, labels, comps, scores)


def panel_row(panel: LatentPanel) -> dict:
    scores = {k: v for k, v in panel.scores.items() if k in ("ari", "nmi")}
    at_k = {k: v for k, v in panel.scores.items() if k not in scores}
    return {"dataset": panel.dataset, "method": panel.method, "seed": panel.seed, **scores, "space": panel.components.space,
            "n_points": len(panel.points), "n_active": int(panel.components.active.sum()), **at_k}


def summary_rows(rows: Sequence[dict]) -> list[dict]:
    """Mean and sample std (ddof = 1; empty with one seed) over seeds per (dataset, method)."""
    out = []
    for key in dict.fromkeys((r["dataset"], r["method"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["method"]) == key]
        entry = {"dataset": key[0], "method": key[1], "n_seeds": len(group)}
        for metric in SUMMARY_METRICS:
            if not all(metric in r for r in group):
                continue
            values = np.array([r[metric] for r in group], dtype=float)
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        out.append(entry)
    return out


def plot_latent_panels(panels: Sequence[LatentPanel], title: str, paths: Sequence[str | Path], summary: Sequence[dict] = ()) -> None:
    """One panel per model: points coloured by class, 2-sigma ellipses of active components."""
    stats = {(s["dataset"], s["method"]): s for s in summary}
    with style():
        fig, axes = plt.subplots(1, len(panels), figsize=(PANEL_WIDTH * 1.25 * len(panels), PANEL_WIDTH * 1.25 + 0.9), squeeze=False)
        cmap = plt.get_cmap(CLASS_CMAP)
        for ax, panel in zip(axes[0], panels):
            pts, lab = panel.points.double().numpy(), panel.labels.numpy()
            ax.scatter(pts[:, 0], pts[:, 1], c=lab, cmap=cmap, vmin=-0.5, vmax=9.5, s=1.0, alpha=0.5, linewidths=0, rasterized=True)
            comps = panel.components
            for m in torch.nonzero(comps.active).flatten().tolist():
                ax.add_patch(ellipse_2sigma(comps.means[m].cpu(), comps.scale_tril[m].cpu()))
            # limits from the points (robust quantiles), so a stray component does not shrink the cloud
            lo, hi = np.quantile(pts, 0.002, axis=0), np.quantile(pts, 0.998, axis=0)
            pad = 0.1 * (hi - lo)
            ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
            ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
            ax.set_aspect("equal", adjustable="datalim")
            s = comps.space
            ax.set_xlabel(f"${s}_1$")
            ax.set_ylabel(f"${s}_2$")
            agg = stats.get((panel.dataset, panel.method))
            score = f"ARI {panel.scores['ari']:.2f}, NMI {panel.scores['nmi']:.2f}"
            if agg and agg["n_seeds"] > 1:
                score += f"\n(over {agg['n_seeds']} seeds: ARI {agg['ari_mean']:.2f}±{agg['ari_std']:.2f}, NMI {agg['nmi_mean']:.2f}±{agg['nmi_std']:.2f})"
            ax.set_title(f"{method_label(panel.method)} ({s}-space, {int(comps.active.sum())} component{'s' if int(comps.active.sum()) != 1 else ''}), seed {panel.seed}\n{score}")
        names = CLASS_NAMES.get(panels[0].dataset, [str(k) for k in range(10)])
        classes = sorted(set(int(v) for p in panels for v in p.labels.unique().tolist()))
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=cmap(c % 10), markersize=4, label=names[c] if c < len(names) else str(c)) for c in classes]
        handles.append(plt.Line2D([], [], color=COMPONENT_COLOUR, linewidth=0.7, label="component, 2σ"))
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 11), frameon=False, bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        save_figure(fig, paths)


def figure4(models: Sequence[str | Path], encodings: Sequence[str | Path], paths: Sequence[str | Path], table_path: str | Path,
            summary_path: str | Path, max_points: int = 30_000, device: str = "cpu") -> list[dict]:
    """Figure 4 for one dataset from aligned lists of model files and encodings files (every
    method and seed). Draws the lowest seed of each method; the tables hold every seed."""
    from pipeline.artefacts import load_model, read_encodings

    if len(models) != len(encodings):
        raise ValueError(f"figure4: {len(models)} model files but {len(encodings)} encodings files")
    panels = []
    for model_path, enc_path in zip(models, encodings):
        vae, settings = load_model(model_path, device)
        train = read_encodings(enc_path)["train"]
        keep = torch.randperm(len(train["mean"]), generator=torch.Generator().manual_seed(0))[:max_points]  # same subset per dataset size
        panels.append(latent_panel(vae.prior, train["mean"][keep].float().to(device), train["labels"][keep].long(),
                                   settings["dataset"], settings["method"], int(settings["seed"])))
    datasets = sorted({p.dataset for p in panels})
    if len(datasets) != 1:
        raise ValueError(f"figure4 draws one dataset at a time; got runs of {datasets}")
    rows = [panel_row(p) for p in panels]
    summary = summary_rows(rows)
    shown = {}
    for p in sorted(panels, key=lambda p: p.seed):
        shown.setdefault(p.method, p)
    title = f"{dataset_title(datasets[0])}: 2-D latent spaces of jointly trained mixture priors, {len(panels[0].points):,} training images coloured by class"
    plot_latent_panels(list(shown.values()), title, paths, summary)
    config = {"figure": "fig4", "max_points": max_points, "active_weight": ACTIVE_WEIGHT, "class_cluster_inits": CLASS_CLUSTER_INITS}
    inputs = [*map(str, models), *map(str, encodings)]
    write_table(table_path, rows, TABLE_COLUMNS, inputs=inputs, config=config)
    write_table(summary_path, summary, SUMMARY_COLUMNS, inputs=inputs, config=config)
    return rows
