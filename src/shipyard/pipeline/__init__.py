"""The pipeline service: cached DAG runs with lineage (``shipyard run``)."""
