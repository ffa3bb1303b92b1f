"""The message stream: the typed protocol, the bus, the publisher that feeds it from the
trace, and a run's state rebuilt from messages. Imports nothing from the other view packages.
"""
