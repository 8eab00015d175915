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

ALL: dict[str, Schema] = {s.type: s for s in (BLOCK, CPU, MEM, NET, NUMA, PS, VM)}

#: ``$tacc_stats`` version we write; readers of TACC's format key off it.
FORMAT_VERSION = "2.3.5"
