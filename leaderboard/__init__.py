"""Leaderboard: tables (markdown, LaTeX, CSV, HTML) and plots from run records.

It reads only run records (never model code), so anyone's results folder can be tabulated;
`command.py` is its face on the `ovbench leaderboard` command line.
"""
