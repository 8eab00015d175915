"""Schemas of the types our monitor writes, in one place.

The collectors and the demo-cluster generator both declare their data with
these, so synthetic and real nodes look the same to the pipeline. Event names,
order and options follow TACC's C monitor (see the Stampede3 fixture), with
``W=32`` added where the kernel's counter really is 32 bits wide.
"""

from __future__ import annotations

from hpcperf_monitor.rawformat import Event, Schema


def schema(type_: str, specs: str) -> Schema:
    """Build a schema from the ``!type`` line's event tokens."""
    return Schema(type_, tuple(Event.parse(s) for s in specs.split()))


# /proc/diskstats millisecond fields are 32-bit and wrap after ~49.7 days.
BLOCK = schema(
    "block",
    "rd_ios,E rd_merges,E rd_sectors,E,U=512B rd_ticks,E,U=ms,W=32 wr_ios,E wr_merges,E "
    "wr_sectors,E,U=512B wr_ticks,E,U=ms,W=32 in_flight io_ticks,E,U=ms,W=32 "
    "time_in_queue,E,U=ms,W=32",
)
CPU = schema("cpu", "user,E,U=cs nice,E,U=cs system,E,U=cs idle,E,U=cs iowait,E,U=cs "
             "irq,E,U=cs softirq,E,U=cs")
MEM = schema(
    "mem",
    "MemTotal,U=KB MemFree,U=KB MemUsed,U=KB Active,U=KB Inactive,U=KB Dirty,U=KB "
    "Writeback,U=KB FilePages,U=KB Mapped,U=KB AnonPages,U=KB PageTables,U=KB "
    "NFS_Unstable,U=KB Bounce,U=KB Slab,U=KB AnonHugePages,U=KB HugePages_Total HugePages_Free",
)
NET = schema(
    "net",
    "collisions,E multicast,E rx_bytes,E,U=B rx_compressed,E rx_crc_errors,E rx_dropped,E "
    "rx_errors,E rx_fifo_errors,E rx_frame_errors,E rx_length_errors,E rx_missed_errors,E "
    "rx_over_errors,E rx_packets,E tx_aborted_errors,E tx_bytes,E,U=B tx_carrier_errors,E "
    "tx_compressed,E tx_dropped,E tx_errors,E tx_fifo_errors,E tx_heartbeat_errors,E "
    "tx_packets,E tx_window_errors,E",
)
NUMA = schema("numa", "numa_hit,E numa_miss,E numa_foreign,E interleave_hit,E local_node,E "
              "other_node,E")
PS = schema("ps", "ctxt,E processes,E load_1 load_5 load_15 nr_running nr_threads")
VM = schema(
    "vm",
    "pgpgin,E,U=KB pgpgout,E,U=KB pswpin,E pswpout,E pgfault,E pgmajfault,E",
)

# Types beyond TACC's core set: the naming contract in docs/monitor.md.
CGROUP = schema(
    "cgroup",
    "cpu_usage,E,U=us mem_current,U=B mem_peak,U=B io_read_bytes,E,U=B io_write_bytes,E,U=B",
)
# a job cgroup without cpuacct (jobacct_gather/linux) or without memory: the
# events that could be read, never a 0 for the missing one (collectors/cgroup.py)
CGROUP_MEM = schema("cgroup_mem", "mem_current,U=B mem_peak,U=B io_read_bytes,E,U=B "
                    "io_write_bytes,E,U=B")
CGROUP_CPU = schema("cgroup_cpu", "cpu_usage,E,U=us io_read_bytes,E,U=B io_write_bytes,E,U=B")
_IB_EVENTS = "port_xmit_data,E,U=4B port_rcv_data,E,U=4B port_xmit_pkts,E port_rcv_pkts,E"
IB_EXT = schema("ib_ext", _IB_EVENTS)
# legacy 32-bit port counters, written only where counters_ext is absent
IB = schema("ib", " ".join(e + ",W=32" for e in _IB_EVENTS.split()))
OPA = schema("opa", _IB_EVENTS)
LLITE = schema(
    "llite",
    "read_bytes,E,U=B write_bytes,E,U=B open,E close,E getattr,E setattr,E statfs,E mkdir,E "
    "rmdir,E unlink,E rename,E",
)
NFS = schema("nfs", "read_bytes,E,U=B write_bytes,E,U=B ops,E")
# unwrapped by the monitor into monotonic 64-bit counters (collectors/rapl.py)
RAPL = schema("rapl", "pkg_energy,E,U=uJ dram_energy,E,U=uJ")
PMC = schema("pmc", "instructions,E cycles,E ref_cycles,E flops,E")
IMC = schema("imc", "read_bytes,E,U=B write_bytes,E,U=B")
NVIDIA_GPU = schema(
    "nvidia_gpu",
    "utilization,U=% mem_used,U=B mem_total,U=B power,U=mW energy,E,U=mJ temperature "
    "sm_clock,U=MHz",
)
# MIG instances (device <gpu>.<gi>.<ci>): a type of their own, because their
# memory is already in their GPU's nvidia_gpu row
NVIDIA_MIG = schema("nvidia_mig", "mem_used,U=B mem_total,U=B sm_count")
# as in TACC's monitor (Stampede3 fixture)
PROC = schema(
    "proc",
    "Uid VmPeak,U=kB VmSize,U=kB VmLck,U=kB VmHWM,U=kB VmRSS,U=kB VmData,U=kB VmStk,U=kB "
    "VmExe,U=kB VmLib,U=kB VmPTE,U=kB VmSwap,U=kB Threads",
)
# our extension for application detection (docs/raw-format.md, "procexe"): the
# device is <pid>/<percent-encoded /proc/<pid>/exe>; CPU time from /proc/<pid>/stat
PROCEXE = schema("procexe", "utime,E,U=cs stime,E,U=cs")
SYSV_SHM = schema("sysv_shm", "mem_used,U=B segs_used")
TMPFS = schema("tmpfs", "bytes_used,U=B files_used")
VFS = schema("vfs", "dentry_use file_use inode_use")

ALL: dict[str, Schema] = {
    s.type: s
    for s in (
        BLOCK, CGROUP, CGROUP_CPU, CGROUP_MEM, CPU, IB, IB_EXT, IMC, LLITE, MEM, NET, NFS, NUMA,
        NVIDIA_GPU, NVIDIA_MIG, OPA, PMC, PROC, PROCEXE, PS, RAPL, SYSV_SHM, TMPFS, VFS, VM,
    )
}

#: ``$tacc_stats`` version we write; readers of TACC's format key off it.
FORMAT_VERSION = "2.3.5"
