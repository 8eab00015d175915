#!/bin/sh
# Slurm Prolog (slurm.conf: Prolog=/usr/libexec/hpcperf-monitor/prolog.sh).
# Tells the monitor daemon a job starts: it takes a sample marked %begin.
# Array tasks are named <array job>_<task>; their cgroup is keyed by the
# task's own SLURM_JOB_ID, passed as --cgroup-id. GPUs: SLURM_JOB_GPUS.
# Never fails the job: the monitor's problems are logged, not returned.
job="$SLURM_JOB_ID"
if [ -n "$SLURM_ARRAY_JOB_ID" ] && [ -n "$SLURM_ARRAY_TASK_ID" ]; then
    job="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
[ -n "$job" ] || exit 0
set -- --begin "$job" --cgroup-id "$SLURM_JOB_ID"
[ -n "$SLURM_JOB_GPUS" ] && set -- "$@" --gpus "$SLURM_JOB_GPUS"
timeout 20 "${HPCPERF_MONITOR_BIN:-/usr/bin/hpcperf-monitor}" --config /etc/hpcperfstats/monitor.conf "$@" \
    2>&1 | logger -t hpcperf-monitor-prolog
exit 0
