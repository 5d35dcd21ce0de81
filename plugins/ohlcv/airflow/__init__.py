"""The only modules of the package that import Airflow."""
