"""rudder and guidance side by side: ``python -m benchmarks``.

- ``peer``: guidance 0.3.x in a virtual environment of its own, made on first run.
- ``models``: the models both load (built once into ``benchmarks/.cache``).
- ``protocol``: the driver's JSON-lines conversation with a long-lived worker process.
- ``programs``: the benchmark programs, written once against the API both libraries share.
- ``measure``: what workers measure with (forward counting, timing, memory, llguidance alone).
- ``worker``: the commands a worker answers; ``rudder_worker`` and ``guidance_worker`` adapt
  them to each library.
- ``cases``: the six cases, alternating the two workers run by run.
- ``report``: medians, spreads and ratios, as ``results.md`` and ``results/compare.json``.
- ``driver``: the command line.
"""
