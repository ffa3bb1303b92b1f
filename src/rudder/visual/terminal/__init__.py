"""The terminal view: which view the environment gets, the process's terminal view and its
stream guard, its live and append-only outputs. Built on :mod:`rudder.visual.stream` only.
"""
