#!/bin/sh
# Slurm Epilog (slurm.conf: Epilog=/usr/libexec/hpcperf-monitor/epilog.sh).
# Tells the monitor daemon a job ended: it takes a sample marked %end and
# forgets the job. The job is its raw id, as in the prolog; settings and
# logging as in the prolog (/etc/default/hpcperf-monitor). Never fails the job.
defaults="${HPCPERF_PROLOG_DEFAULTS:-/etc/default/hpcperf-monitor}"
# shellcheck disable=SC1090
[ -r "$defaults" ] && . "$defaults"
job="$SLURM_JOB_ID"
[ -n "$job" ] || exit 0
log() {
    if [ -z "$HPCPERF_PROLOG_LOG" ] && [ -S /dev/log ] && command -v logger >/dev/null; then
        logger -t "hpcperf-monitor-$1"
    else
        sed "s/^/$(date -u +%FT%TZ) $1 job $job: /" >> "${HPCPERF_PROLOG_LOG:-/var/log/hpcperf-monitor-prolog.log}"
    fi
}
timeout 20 "${HPCPERF_MONITOR_BIN:-/usr/bin/hpcperf-monitor}" \
    --config "${HPCPERF_MONITOR_CONFIG:-/etc/hpcperfstats/monitor.conf}" --end "$job" 2>&1 | log epilog
exit 0
