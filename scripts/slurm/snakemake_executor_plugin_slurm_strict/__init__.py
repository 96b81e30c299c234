"""Snakemake executor ``slurm-strict``: snakemake-executor-plugin-slurm that never waits forever.

The SLURM plugin (2.8.0) reads job states with ``sacct``. Two ways it waits forever, fixed here:

1. ``sacct --parsable2`` reports a cancelled job as ``CANCELLED by <uid>``; the plugin compares
   states with ``==`` against ``CANCELLED``, takes the job for running and polls it forever (a
   ``scancel`` hangs the run; measured on SLURM 22.05). States are reduced to their first word.
2. After a NODE_FAIL it adds the node to ``--exclude`` for every later submission, read from
   ``sacct -o nodelist``; for a requeued job that reads ``None assigned``, and every later sbatch
   fails ("Unable to open file assigned"); on a one-node cluster the node is excluded for good.
   Nodes learned this way are dropped (SLURM itself schedules nothing on a DOWN node; ones named
   in ``--slurm-strict-exclude-failed-nodes`` stay excluded).
3. When that query fails on every attempt
of a cycle (no slurmdbd, slurmdbd down) it neither reports the active jobs nor hands them back,
so Snakemake waits for them forever with the outputs already written; a job that ``sacct`` never
lists (lost by accounting) is polled forever too. This subclass keeps the plugin's behaviour and
adds one rule: a job whose state has not been read for ``state_timeout`` seconds (since its
submission or its last reading) is cancelled with ``scancel`` and reported failed, with an error
naming the rule, its wildcards and the SLURM job id (3.). With ``retries`` it is resubmitted; when
states stay unreadable every job fails in turn and the run ends with an error.

Found by Snakemake on ``sys.path`` (plugins are modules named ``snakemake_executor_plugin_*``):
``export PYTHONPATH=$PWD/scripts/slurm`` in the repository root, then ``--executor slurm-strict``
(profiles/slurm does this). Its settings are the plugin's, prefixed ``--slurm-strict-``, plus
``--slurm-strict-state-timeout``.
"""

import subprocess
import time
from dataclasses import dataclass, field
from typing import AsyncGenerator, Dict, List, Optional, Set

import snakemake_executor_plugin_slurm as slurm
from snakemake_executor_plugin_slurm.job_status_query import query_job_status, query_job_status_sacct, query_job_status_squeue
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.executors.remote import SubmittedJobInfo

common_settings = slurm.common_settings


async def query_job_status_first_word(command: str, logger):
    """The plugin's query, with each state cut to its first word (``CANCELLED by 0`` -> ``CANCELLED``)."""
    states, duration = await query_job_status(command, logger)
    if states is not None:
        states = {jobid: state.split()[0] if state.strip() else state for jobid, state in states.items()}
    return states, duration


# The plugin calls query_job_status through its package namespace; route it through the fix.
# (Snakemake imports every executor plugin it finds, so this applies to `--executor slurm` too
# whenever this folder is on PYTHONPATH; it only makes more states readable.)
slurm.query_job_status = query_job_status_first_word


@dataclass
class ExecutorSettings(slurm.ExecutorSettings):
    state_timeout: Optional[int] = field(
        default=600,
        metadata={
            "help": "Seconds a job's SLURM state may stay unreadable (sacct failing, or not listing "
            "the job) before the job is cancelled and reported failed, naming it. Snakemake then "
            "retries it or ends the run with an error instead of waiting forever.",
            "env_var": False,
            "required": False,
        },
    )
    max_status_interval: Optional[int] = field(
        default=None,
        metadata={
            "help": "Longest wait in seconds between two status queries. The plugin waits 10 s "
            "longer after every query that finds no job finished (up to 180 s); a cap makes short "
            "jobs' ends seen sooner (the smoke test uses 10). Unset: the plugin's schedule.",
            "env_var": False,
            "required": False,
        },
    )


def _lookup_ids(external_jobid: str) -> List[str]:
    """``123_4`` (an array task) may be listed by sacct as ``123``; the plugin does the same."""
    parent, _, task = external_jobid.partition("_")
    return [external_jobid, parent] if task.isdigit() and parent.isdigit() else [external_jobid]


def describe(job: JobExecutorInterface) -> str:
    """``rule train_model (dataset=mnist5k, method=ladder, seed=0)``; a group job lists its rules."""
    if job.is_group():
        return f"group {job.name} ({', '.join(sorted({j.rule.name for j in job.jobs}))})"
    wildcards = ", ".join(f"{k}={v}" for k, v in job.wildcards.items())
    return f"rule {job.rule.name}" + (f" ({wildcards})" if wildcards else "")


class Executor(slurm.Executor):
    def __post_init__(self, test_mode: bool = False):
        super().__post_init__(test_mode)
        self._last_read: Dict[str, float] = {}  # SLURM job id -> monotonic time its state was last read
        self._reported: Set[str] = set()
        self._configured_exclusions = set(self._failed_nodes)

    def report_job_submission(self, job_info: SubmittedJobInfo):
        self._last_read[job_info.external_jobid] = time.monotonic()
        super().report_job_submission(job_info)

    def report_job_success(self, job_info: SubmittedJobInfo):
        self._reported.add(job_info.external_jobid)
        super().report_job_success(job_info)

    def report_job_error(self, job_info: SubmittedJobInfo, msg=None, **kwargs):
        self._reported.add(job_info.external_jobid)
        super().report_job_error(job_info, msg=msg, **kwargs)

    async def _read_states(self) -> Optional[Dict[str, str]]:
        """The states of this run's jobs by SLURM id, through the plugin's own query; None on failure."""
        if self.get_status_command() == "squeue":
            command = query_job_status_squeue(self.run_uuid)
        else:
            command = query_job_status_sacct(self.run_uuid)
        async with self.status_rate_limiter:
            states, _ = await query_job_status_first_word(command, self.logger)
        return states

    async def check_active_jobs(self, active_jobs: List[SubmittedJobInfo]) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            async for j in super().check_active_jobs(active_jobs):
                yield j
            return
        states = await self._read_states()
        now = time.monotonic()
        timeout = self.workflow.executor_settings.state_timeout
        fresh = []
        for j in active_jobs:
            jobid = j.external_jobid
            if states is not None and any(i in states for i in _lookup_ids(jobid)):
                self._last_read[jobid] = now
            unread = now - self._last_read.setdefault(jobid, now)
            if timeout and unread > timeout:
                self._give_up(j, unread, states is None)
            else:
                fresh.append(j)
        handed_back = set()
        async for j in super().check_active_jobs(fresh):
            handed_back.add(j.external_jobid)
            yield j
        cap = self.workflow.executor_settings.max_status_interval
        if cap and self.next_seconds_between_status_checks > cap:
            self.next_seconds_between_status_checks = cap
        learned = self._failed_nodes - self._configured_exclusions
        if learned:
            self.logger.warning(f"node(s) {', '.join(sorted(learned))} failed; not excluding them from "
                                "later submissions (SLURM schedules nothing on a DOWN node)")
            self._failed_nodes = set(self._configured_exclusions)
        # The plugin drops jobs when every status query of the cycle failed: keep them active
        # (their clock runs on) instead of letting Snakemake wait for them forever.
        for j in fresh:
            if j.external_jobid not in handed_back and j.external_jobid not in self._reported:
                yield j

    def _give_up(self, j: SubmittedJobInfo, unread: float, query_failed: bool):
        why = ("the status query failed" if query_failed else "sacct does not list it") + f" for {unread:.0f} s"
        cancel = subprocess.run(["scancel", j.external_jobid], capture_output=True, text=True)
        cancelled = "cancelled it" if cancel.returncode == 0 else f"scancel failed too ({cancel.stderr.strip()})"
        msg = (f"SLURM job {j.external_jobid} ({describe(j.job)}): its state could not be read ({why}; "
               f"--slurm-strict-state-timeout); {cancelled}. Check slurmdbd/sacct "
               f"(`sacct -j {j.external_jobid}`) and the job log {j.aux.get('slurm_logfile')}.")
        self.logger.error(msg)
        self.report_job_error(j, msg=msg, aux_logs=[str(j.aux.get("slurm_logfile"))])
