"""The benchmark harness (bench/run.sh). Not part of the deployed application."""
