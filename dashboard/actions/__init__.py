"""Pause, resume, extend and delete: `runner` acts through the E2B API and audits each attempt;
`panel` is their Streamlit side (selection, buttons, confirmation), shared by two pages."""
