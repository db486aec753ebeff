"""A Dask cluster of SLURM jobs (dask-jobqueue), one GPU and one pair per job, and a seqbench run on it.

    python slurm_seqbench.py                    # submit 4 jobs, run the matrix on them, stop
    python slurm_seqbench.py --job-script-only  # print the job script each job would run
"""
import subprocess
import sys

from dask_jobqueue import SLURMCluster

cluster = SLURMCluster(
    queue="gpu",                                  # your partition
    cores=1, processes=1, job_cpu=4,              # one worker per job, one pair at a time
    memory="16GB", walltime="04:00:00",
    job_extra_directives=["--gres=gpu:1"],        # SLURM sets CUDA_VISIBLE_DEVICES in the job
    worker_extra_args=["--resources", "gpu=1"],   # GPU pairs go to these workers
    job_script_prologue=["source ~/venvs/seqbench/bin/activate"],
)
print(cluster.job_script())
if "--job-script-only" not in sys.argv:
    cluster.scale(jobs=4)                         # pairs wait on the scheduler until jobs start
    subprocess.run(["seqbench", "run", "-m", "gru-gpu", "-m", "lstm-gpu", "-d", "mnist", "--seeds", "0,1,2,3",
                    "--scheduler", cluster.scheduler_address, "--data-dir", "/shared/seqbench-data"])
cluster.close()
