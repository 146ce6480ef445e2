"""The Events and audit page: lifecycle events and every action taken from the dashboard."""
