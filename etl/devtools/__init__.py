"""Developer tooling around the stages: Airflow run locally (`dags test`) and Airflow standalone."""
