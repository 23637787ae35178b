"""hdh-migrate: move the Health Data Hub warehouse from Azure Blob Storage to a sovereign S3 store.

The core library (this package) imports no Airflow: the DAGs in ``dags/`` and the glue in ``plugins/``
only wrap it, and the ``hdh-migrate`` CLI drives the same functions.
"""

__version__ = "0.1.0"

import os as _os

# Arrow's default pool (mimalloc) keeps the pages it freed: a copy streaming its manifests 10,000 rows at a
# time grew its peak RSS with the object count (160 MiB at 1,000 objects, 226 MiB at 10,000, 361 MiB at
# 100,000) for buffers long released. The system allocator gives them back, and manifests are small
# batches. Arrow reads this variable once, when its C++ side first needs a pool, so it is set here, before
# anything imports pyarrow; an explicit setting still wins.
_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

# pyarrow imports numpy, whose OpenBLAS starts one thread per core that spins, waiting for matrix work that
# never comes here: ~0.1 s of CPU per process (perf: 7.6 % of a 512 MiB copy's samples), taken from the
# stores on a small host. Nothing in hdh-migrate does linear algebra; an explicit setting still wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
