"""The Streamlit dashboard: one package per page.

The app runs inside the monitor process (`sandscope run`), which owns the DuckDB store and
the scheduler and hands them to the pages through `dashboard.serving.runtime`.
"""
