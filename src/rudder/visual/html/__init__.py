"""Views as HTML: the client page, the script-free static rendering and the export.
Built on :mod:`rudder.visual.stream` only.
"""
