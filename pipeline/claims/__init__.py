"""The paper's claims C1-C8 checked on our per-seed results (issue 12): ``python -m pipeline claims``.

Three modules, one role each:

- ``statistics``: the one-sided tests, their 95 % intervals and the verdict rule (holds / fails /
  inconclusive / not run).
- ``definitions``: what each claim states, which numbers it reads and which test decides it
  (C1-C5 ``rank_claims``, C6, C7, C8; ``evaluate_claims`` returns the DataFrame of all of them).
- ``render``: that DataFrame as PREFIX.csv, PREFIX.md and PREFIX.provenance.json (``write_claims``).

``register_commands`` adds the command to the one CLI (``pipeline.cli``).
"""

from __future__ import annotations

from pipeline.claims.definitions import CSV_COLUMNS, C6_METHOD, evaluate_claims, load_records
from pipeline.claims.render import to_markdown, write_claims
from pipeline.claims.statistics import ALPHA, VERDICTS, Comparison, contrast, decide, one_sample, rank_trend, verdict_label, welch

__all__ = ["ALPHA", "CSV_COLUMNS", "Comparison", "VERDICTS", "contrast", "decide", "evaluate_claims", "load_records", "one_sample",
           "rank_trend", "register_commands", "to_markdown", "verdict_label", "welch", "write_claims"]


def cmd_claims(args) -> None:
    write_claims(args.metrics, args.fid, args.slp, args.alignment, args.out_prefix, args.alpha, args.datasets, args.ablation_method)


def register_commands(subparsers) -> None:
    """Add ``python -m pipeline claims`` to the CLI's subparsers."""
    from pipeline.commands import add_command

    p = add_command(subparsers, "claims", cmd_claims, "check the paper's claims C1-C8 on per-seed results", config=False)
    p.add_argument("--metrics", nargs="*", default=[], help="per-run metrics.json files")
    p.add_argument("--fid", nargs="*", default=[], help="per-run fid.json files (headline and d_t ablation)")
    p.add_argument("--slp", nargs="*", default=[], help="SLP tables (Figures 5-6); missing files are skipped")
    p.add_argument("--alignment", nargs="*", default=[], help="component-alignment tables (Figure 4); missing files are skipped")
    p.add_argument("--datasets", nargs="*", help="datasets to report, 'not run' where empty (default: those in the inputs)")
    p.add_argument("--ablation-method", default=C6_METHOD, help="the method whose d_t is ablated (config ablation.method)")
    p.add_argument("--alpha", type=float, default=ALPHA, help="significance level of every one-sided test")
    p.add_argument("--out-prefix", required=True, help="writes PREFIX.csv, PREFIX.md, PREFIX.provenance.json")
