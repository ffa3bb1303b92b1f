"""rudder's benchmarks.

``python -m benchmarks`` runs rudder and the guidance library side by side (see
:mod:`benchmarks.compare`); the scripts next to this file measure rudder alone.
"""
