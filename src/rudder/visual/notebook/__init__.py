"""The notebook: the widget, the legacy display and the cell hooks. Built on the layers
below (stream, html, terminal).
"""
