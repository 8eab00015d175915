"""Application detection: rules as data, and a job's applications and shares.

The Stampede3 fixture was written by TACC's C monitor, which has no
``procexe`` type: its shares are of resident memory x time. The expected
numbers are VmRSS summed over the file's 17 samples per process name, worked
out with awk, independently of the code under test:

    awk '$1=="proc"{split($2,a,"/"); s[a[1]]+=$8} END{for(k in s) print k, s[k]}'
"""

from __future__ import annotations

import polars as pl
import pytest
from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.apps.detect import (
    PROCESS_SCHEMA,
    by_application,
    job_applications,
    sample_processes,
)
from hpcperfstats.apps.load import process_lines
from hpcperfstats.apps.rules import (
    DEFAULT_RULES,
    app_rules_version,
    classify,
    load_app_rules,
    parse_app_rules,
)

# VmRSS (kB) summed over the 17 samples, per process name (awk, above)
RSS = {"python": 2474806528, "wandb-core": 19634864, "wandb": 10127616,
       "gpu_stats": 9506068, "srun": 192576, "slurm_script": 77724,
       # node daemons (category system): not the job's
       "munged": 237524, "nslcd": 204680, "nvidia-persiste": 56916, "chronyd": 52972}
JOB_RSS = sum(RSS.values()) - (237524 + 204680 + 56916 + 52972)  # 2514345376


@pytest.fixture(scope="module")
def stampede_rows(stampede_text) -> pl.DataFrame:
    raw = read_raw(stampede_text)
    assert not raw.issues
    return job_applications("2946877", sample_processes(raw.samples), load_app_rules())


def test_stampede3_proc_lines_name_python_wandb_and_slurm_by_memory(stampede_rows):
    apps = by_application(stampede_rows)
    shares = dict(zip(apps["application"], apps["share"], strict=True))
    assert set(shares) == {"Python", "Weights & Biases", "Slurm"}  # daemons left out
    assert JOB_RSS == 2514345376
    assert shares["Python"] == pytest.approx(2474806528 / JOB_RSS)  # 0.98427
    assert shares["Weights & Biases"] == pytest.approx(
        (19634864 + 10127616 + 9506068) / JOB_RSS)  # 0.01562
    assert shares["Slurm"] == pytest.approx((192576 + 77724) / JOB_RSS)  # 0.000108
    assert sum(shares.values()) == pytest.approx(1.0)
    assert set(stampede_rows["basis"]) == {"memory"}
    assert stampede_rows["cpu_s"].null_count() == stampede_rows.height  # no CPU time there
    by_exe = {r["executable"]: r for r in stampede_rows.iter_rows(named=True)}
    # without procexe the executable is the process name; distinct pids counted by awk
    assert by_exe["python"]["processes"] == 29 and by_exe["wandb"]["processes"] == 8
    assert by_exe["srun"]["processes"] == 2
    # mean resident memory over the file's 17 sample instants
    assert by_exe["python"]["mem_kb"] == pytest.approx(2474806528 / 17)
    assert apps.row(0, named=True)["category"] == "language"


def test_process_lines_keep_only_what_detection_reads(stampede_text):
    kept = process_lines(stampede_text)
    assert "\ncpu " not in kept and "\nproc python/" in kept
    same = sample_processes(read_raw(kept).samples)
    assert same.equals(sample_processes(read_raw(stampede_text).samples))


def _procs(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PROCESS_SCHEMA, orient="row")


def test_cpu_time_decides_the_shares_and_unknown_executables_are_listed():
    """Two hosts; worked by hand: CPU of a process is its largest utime+stime seen.

    c1 pid 10 vasp_std: 0 cs, then 90000 cs -> 900 s; pid 11 vasp_std 300 s;
    c2 pid 10 (another host, same pid) /opt/x/mycode 600 s;
    c1 pid 12 bash 3 s; c1 pid 13 munged (system) 500 s, left out.
    Total 900 + 300 + 600 + 3 = 1803 s.
    """
    procs = _procs([
        ("c1", 100.0, 10, "vasp_std", "/apps/vasp/6.4/bin/vasp_std", 0.0, 1000.0),
        ("c1", 160.0, 10, "vasp_std", "/apps/vasp/6.4/bin/vasp_std", 90000.0, 2000.0),
        ("c1", 160.0, 11, "vasp_std", "/apps/vasp/6.4/bin/vasp_std", 30000.0, 2000.0),
        ("c2", 160.0, 10, "mycode", "/opt/x/mycode", 60000.0, 500.0),
        ("c1", 160.0, 12, "bash", "/usr/bin/bash", 300.0, 10.0),
        ("c1", 160.0, 13, "munged", "/usr/sbin/munged", 50000.0, 10.0),
        # a process the monitor's cap left without procexe: name only, no CPU time
        ("c1", 160.0, 14, "vasp_std", None, None, 5.0),
    ])
    rows = job_applications("7", procs, load_app_rules())
    assert set(rows["basis"]) == {"cpu"}
    got = {(r["application"], r["executable"]): (r["share"], r["cpu_s"], r["processes"])
           for r in rows.iter_rows(named=True)}
    assert got[("VASP", "/apps/vasp/6.4/bin/vasp_std")] == pytest.approx((1200 / 1803, 1200, 2))
    assert got[("unknown", "/opt/x/mycode")] == pytest.approx((600 / 1803, 600, 1))
    assert got[("shell", "/usr/bin/bash")] == pytest.approx((3 / 1803, 3, 1))
    assert got[("VASP", "vasp_std")][0] == 0.0 and got[("VASP", "vasp_std")][1] is None
    assert not any(a == "node daemons" for a, _ in got)
    unknown = rows.filter(~pl.col("known"))
    assert unknown["executable"].to_list() == ["/opt/x/mycode"]
    assert unknown["category"].to_list() == ["unknown"]
    apps = by_application(rows)
    assert apps["application"].to_list() == ["VASP", "unknown", "shell"]


def test_a_job_without_process_data_has_no_rows():
    assert job_applications("1", _procs([]), load_app_rules()).is_empty()


@pytest.mark.parametrize(("exe", "command", "expected"), [
    ("/apps/gromacs/2024/bin/gmx_mpi", "gmx_mpi", "GROMACS"),
    ("/apps/lammps/bin/lmp_mpi", "lmp_mpi", "LAMMPS"),
    ("/opt/namd/namd3", None, "NAMD"),
    ("/opt/qe-7.2/bin/pw.x", "pw.x", "Quantum ESPRESSO"),
    ("/scratch/wrf/run/wrf.exe", None, "WRF"),
    ("/opt/openfoam11/platforms/bin/simpleFoam", None, "OpenFOAM"),
    ("/usr/bin/python3.11", "pt_main_thread", "Python"),
    (None, "python", "Python"),
    ("/opt/matlab/R2024a/bin/glnxa64/MATLAB", None, "MATLAB"),
    ("/usr/lib/R/bin/exec/R", "R", "R"),
    ("/opt/julia-1.10/bin/julia", None, "Julia"),
    ("/apps/vasp/bin/vasp_std (deleted)", None, "VASP"),  # binary replaced while running
    ("/home/u/a.out", "a.out", None),
])
def test_default_rules_name_the_usual_codes(exe, command, expected):
    rule = classify(load_app_rules(DEFAULT_RULES), exe, command)
    assert (rule.name if rule else None) == expected


def test_rules_file_mistakes_are_reported_with_the_rule():
    with pytest.raises(ValueError, match=r"rule 2 \(A\): every rule needs a unique name"):
        parse_app_rules("rules:\n - {name: A, category: c, exe: [a]}\n"
                        " - {name: A, category: c, exe: [b]}\n")
    with pytest.raises(ValueError, match="needs exe or command"):
        parse_app_rules("rules:\n - {name: A, category: c}\n")
    with pytest.raises(ValueError, match="category missing"):
        parse_app_rules("rules:\n - {name: A, exe: [a]}\n")
    with pytest.raises(ValueError, match="unknown key"):
        parse_app_rules("rules:\n - {name: A, category: c, exe: [a], regex: x}\n")
    with pytest.raises(ValueError, match="not 'unknown'"):
        parse_app_rules("rules:\n - {name: unknown, category: c, exe: [a]}\n")


def test_first_matching_rule_wins_and_the_version_is_the_files_hash(tmp_path):
    rules = parse_app_rules("rules:\n - {name: Mine, category: c, exe: ['*/special/*']}\n"
                            " - {name: Py, category: language, command: [python]}\n")
    assert classify(rules, "/opt/special/python", "python").name == "Mine"
    assert classify(rules, "/usr/bin/python3", "python").name == "Py"
    one, two = tmp_path / "a.yaml", tmp_path / "b.yaml"
    one.write_text("rules: []\n")
    two.write_text("rules: []\n# edited\n")
    assert app_rules_version(one) != app_rules_version(two)
    assert len(app_rules_version(DEFAULT_RULES)) == 12


def test_the_rules_hash_is_the_dagster_code_version():
    from hpcperf_assets.job_applications import job_applications as asset

    assert asset.code_versions_by_key[asset.key] == app_rules_version(DEFAULT_RULES)
