"""``python -m benchmarks``: rudder and guidance side by side (options: ``--help``)."""

from benchmarks.compare.driver import main

if __name__ == "__main__":
    main()
