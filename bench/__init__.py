"""meterflow's benchmarks at company scale: `python -m bench.run` (`make bench`), never part of `make test`.

Each measured run happens in a fresh child process (`bench.child`) so that its peak RSS is its own; the
data home of each run is a hard-linked copy of the previous stage's output, so repeats are independent.
"""
