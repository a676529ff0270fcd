"""Cluster mode (issue 18): gateways dispatch invocations to `cloudfn worker` processes over NATS.

Imported only when `cluster.nats_url` is set (tests/cluster/test_cluster_imports.py): the embedded
platform never loads nats-py.
"""

import importlib.util

from core.errors import ConfigError

# The default install leaves nats-py out (the `cluster` extra): say what to install, not a traceback.
if importlib.util.find_spec("nats") is None:
    raise ConfigError(
        "cluster mode (cluster.nats_url, `cloudfn worker`, `cloudfn cluster up`) needs nats-py, which this "
        "install lacks: pip install 'cloudfn[cluster]' (nats-py==2.16.0)"
    )
