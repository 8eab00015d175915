"""Plain-words advice next to each job flag.

The flag rules (``hpcperfstats/rules/job_flags.yaml``) say what was seen and
name an advice category (memory, time, cores, nodes, gpus); this table says
what a researcher can do about it. A few rules without a category have
advice by their own name.
"""

from __future__ import annotations

ADVICE: dict[str, str] = {
    "memory": "Set #SBATCH --mem close to what the job used, plus a safety margin: too little "
              "and the job is killed, too much and it waits longer to start.",
    "time": "Set #SBATCH --time closer to the real run time: shorter limits start sooner.",
    "cores": "Request fewer cores (#SBATCH --ntasks / --cpus-per-task), or make sure the "
             "program runs in parallel (threads, MPI ranks, OMP_NUM_THREADS).",
    "nodes": "Request fewer nodes (#SBATCH --nodes), or check that srun/mpirun starts work "
             "on every node.",
    "gpus": "Check that the code uses the GPU (CUDA_VISIBLE_DEVICES, the framework's device "
            "setting), or do not request one (#SBATCH --gpus).",
    "lustre_metadata_storm": "Keep many small files on node-local disk ($TMPDIR) or pack "
                             "them into fewer, larger files.",
    "load_imbalance": "Spread the work evenly over the nodes (domain decomposition, "
                      "task sizes) so none waits for the others.",
}


def advice(flag: str, category: str | None = None) -> str:
    """Advice by the rule's category, else by the flag's name, else none."""
    return ADVICE.get(category or "", "") or ADVICE.get(flag, "")
