"""Performance measurement: iperf3 throughput, latency, baselines, comparison."""
