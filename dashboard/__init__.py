"""The Streamlit dashboard: page scripts in `dashboard/views`, their logic in plain modules here.

The app runs inside the monitor process (`sandscope run`), which owns the DuckDB store and
the scheduler and hands them to the pages through `dashboard.runtime`.
"""
