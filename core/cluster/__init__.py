"""Cluster mode (issue 18): gateways dispatch invocations to `cloudfn worker` processes over NATS.

Imported only when `cluster.nats_url` is set (tests/cluster/test_cluster_imports.py): the embedded
platform never loads nats-py.
"""
