"""The one reader of the per-run metric files (``metrics.json``, ``fid.json``) that tables and claims use.

The files are written by ``pipeline.artefacts.write_run_json``: ``{"dataset", "method", "variant",
"seed", "prior", "d_t", "metrics": {...}, "provenance": {...}}`` (FID files may add ``fid_protocol``).
``read_run_metrics`` turns any number of them into one DataFrame row per run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.names import DEFAULT_VARIANT
from pipeline.provenance import DamagedArtefact

RUN_KEYS = ["dataset", "method", "variant", "seed"]  # what makes two files the same run
COLUMNS = ["path", *RUN_KEYS, "prior", "d_t", "protocol_notes"]  # then the metrics, as the files name them


def as_paths(paths) -> list[str]:
    """One path or a list of them (None: none) as strings."""
    return [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else (paths or [])) if p]


def derived(metrics: dict) -> dict:
    """Metrics computed from a file's own: ``kl_importance_sampled``, the KL with log p(z) importance-
    sampled (``cross_entropy``) where ``kl`` has the prior-VAE bound (hierarchical, LaDDer; equal to
    ``kl`` for the exact priors). The ELBO's ``kl`` carries the bound's gap, about 5 nats for LaDDer
    on the CPU reference, so C3 reports this beside it."""
    if "cross_entropy" in metrics and "entropy" in metrics:
        return {"kl_importance_sampled": -(metrics["entropy"] + metrics["cross_entropy"])}
    return {}


def read_run_metrics(paths) -> pd.DataFrame:
    """One row per run: COLUMNS, then every metric of the file's ``metrics`` block.

    A file named twice is read once; two files for one run (same RUN_KEYS) with the same numbers
    count once, with different numbers they are an error (a stale file, which would otherwise
    weigh one seed twice in a mean)."""
    rows = []
    for path in dict.fromkeys(as_paths(paths)):
        try:
            data = json.loads(Path(path).read_text())
            rows.append({"path": path, "dataset": data["dataset"], "method": data["method"],
                         "variant": data.get("variant") or DEFAULT_VARIANT, "seed": int(data["seed"]), "prior": data.get("prior"), "d_t": data.get("d_t"),
                         "protocol_notes": (data.get("fid_protocol") or {}).get("notes"), **data["metrics"], **derived(data["metrics"])})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # truncated, not JSON, or not a run's record
            raise DamagedArtefact(path, f"not a per-run result file: {type(err).__name__}: {err}") from err
    frame = pd.DataFrame(rows, columns=None if rows else COLUMNS)
    for key, group in frame[frame.duplicated(RUN_KEYS, keep=False)].groupby(RUN_KEYS):
        numbers = group.drop(columns=["path"]).select_dtypes("number")
        if not all(numbers.iloc[0].equals(numbers.iloc[i]) for i in range(1, len(numbers))):
            raise ValueError(f"run {dict(zip(RUN_KEYS, key))} has different results in {', '.join(group.path)}; delete the stale file")
    return frame.drop_duplicates(RUN_KEYS).reset_index(drop=True)
