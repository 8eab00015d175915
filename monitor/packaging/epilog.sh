#!/bin/sh
# Slurm Epilog (slurm.conf: Epilog=/usr/libexec/hpcperf-monitor/epilog.sh).
# Tells the monitor daemon a job ended: it takes a sample marked %end and
# forgets the job. Never fails the job.
job="$SLURM_JOB_ID"
if [ -n "$SLURM_ARRAY_JOB_ID" ] && [ -n "$SLURM_ARRAY_TASK_ID" ]; then
    job="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
[ -n "$job" ] || exit 0
timeout 20 "${HPCPERF_MONITOR_BIN:-/usr/bin/hpcperf-monitor}" --config /etc/hpcperfstats/monitor.conf --end "$job" \
    2>&1 | logger -t hpcperf-monitor-epilog
exit 0
