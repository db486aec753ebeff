"""Reporting: tables, plots, the HTML report, and comparing runs with their statistics.

Everything here reads results (``results.json`` and pair records) and writes files for people;
nothing here trains. matplotlib is imported only by :mod:`seqbench.reporting.plots`.
"""
