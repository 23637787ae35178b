"""Airflow's own AzureBlobStorageToS3Operator (apache-airflow-providers-amazon), executed directly.

Run as its own process by the benchmark: ``python -m bench.airflow_op CONTAINER PREFIX S3_URL``, with
AIRFLOW_HOME, AIRFLOW__CORE__LOAD_EXAMPLES=False and the connections ``AIRFLOW_CONN_BENCH_WASB`` /
``AIRFLOW_CONN_BENCH_AWS`` in the environment. The operator lists the container, lists the destination,
then for each blob downloads it to a temporary file and uploads it with S3Hook.load_file, one blob at a
time: that is how it works, the benchmark does not change it. Only ``execute()`` is timed (Airflow's
import time is left out, which favours the operator). Prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def main() -> None:
    container, prefix, dest = sys.argv[1:4]
    t0 = time.monotonic()
    from airflow.providers.amazon.aws.transfers.azure_blob_to_s3 import AzureBlobStorageToS3Operator

    logging.getLogger("airflow").setLevel(logging.WARNING)
    op = AzureBlobStorageToS3Operator(
        task_id="bench", wasb_conn_id="bench_wasb", aws_conn_id="bench_aws", container_name=container,
        prefix=prefix, dest_s3_key=dest, replace=False,
    )
    imported = time.monotonic()
    files = op.execute(context={})  # type: ignore[arg-type]
    end = time.monotonic()
    print(json.dumps({"objects": len(files), "import_s": round(imported - t0, 3), "seconds": round(end - imported, 3)}))


if __name__ == "__main__":
    main()
