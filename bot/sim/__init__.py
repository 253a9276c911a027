"""A simulated Kubernetes API server for demos, tests and benchmarks.

`World` holds the objects and a simulated clock; `scenario` populates it from YAML and
advances crashes; `server` speaks enough of the REST API that both the official Python
client and the real `kubectl` work against it.
"""
