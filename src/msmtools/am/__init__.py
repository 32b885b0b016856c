"""Agentic-misalignment eval: condition grid, scenario rendering, action parsing, gates, grader, run loop.

`msm am-eval` (msmtools.commands.am_eval) is the command-line face; docs/am-eval.md describes it.
"""
