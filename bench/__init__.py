"""Benchmarks of hdh-migrate against the stores' own limits, rclone and Airflow's AzureBlobStorageToS3Operator.

Run ``bench/run`` (see bench/README.md). Nothing here is imported by the project or its tests.
"""
