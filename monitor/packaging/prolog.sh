#!/bin/sh
# Slurm Prolog (slurm.conf: Prolog=/usr/libexec/hpcperf-monitor/prolog.sh).
# Tells the monitor daemon a job starts: it takes a sample marked %begin.
# Jobs are named by their raw id, SLURM_JOB_ID: Slurm names the job cgroup by
# it, and slurmd's prolog on Slurm 22.05 has no SLURM_ARRAY_* variables; the
# pipeline joins on accounting's JobIDRaw, so array and het jobs match on
# every version. GPUs: SLURM_JOB_GPUS.
# slurmd gives a prolog almost no environment: settings come from
# /etc/default/hpcperf-monitor (HPCPERF_PROLOG_DEFAULTS to move it):
#   HPCPERF_MONITOR_BIN     the monitor (default /usr/bin/hpcperf-monitor; a venv's
#                           .../bin/hpcperf-monitor when installed with pip)
#   HPCPERF_MONITOR_CONFIG  its config (default /etc/hpcperfstats/monitor.conf)
#   HPCPERF_PROLOG_LOG      a file for messages when there is no syslog (/dev/log)
# Never fails the job: the monitor's problems are logged, not returned.
defaults="${HPCPERF_PROLOG_DEFAULTS:-/etc/default/hpcperf-monitor}"
# shellcheck disable=SC1090
[ -r "$defaults" ] && . "$defaults"
job="$SLURM_JOB_ID"
[ -n "$job" ] || exit 0
set -- --begin "$job"
[ -n "$SLURM_JOB_GPUS" ] && set -- "$@" --gpus "$SLURM_JOB_GPUS"
log() {
    if [ -z "$HPCPERF_PROLOG_LOG" ] && [ -S /dev/log ] && command -v logger >/dev/null; then
        logger -t "hpcperf-monitor-$1"
    else
        sed "s/^/$(date -u +%FT%TZ) $1 job $job: /" >> "${HPCPERF_PROLOG_LOG:-/var/log/hpcperf-monitor-prolog.log}"
    fi
}
timeout 20 "${HPCPERF_MONITOR_BIN:-/usr/bin/hpcperf-monitor}" \
    --config "${HPCPERF_MONITOR_CONFIG:-/etc/hpcperfstats/monitor.conf}" "$@" 2>&1 | log prolog
exit 0
