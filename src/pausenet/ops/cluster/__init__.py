"""A local cluster: one real node process per member of a federation, on this machine.

    python -m pausenet.ops.cluster up --labs 3 --overseers 1 --dir D    (scripts/cluster wraps this)
    python -m pausenet.ops.cluster status --dir D
    python -m pausenet.ops.cluster scenario --dir D     # drive a whole pause and lift, watch it spread
    python -m pausenet.ops.cluster kill lab-b --dir D   # SIGKILL one node
    python -m pausenet.ops.cluster start lab-b --dir D  # restart it on its own data, wait until ready
    python -m pausenet.ops.cluster down --dir D
    python -m pausenet.ops.cluster demo                  # up + scenario (+ down unless --keep)

`up` creates the federation (`pausenet.ops.federation.init_federation`), gives every node free
loopback ports, starts each node as `python -m pausenet run --config D/node_configs/<member>.toml`
with its output in D/logs/<member>.log, and waits until every node sees every member fresh and
synced. D/cluster.json records each node (member, role, addresses, pid, config, log, admin token
file, running) so that the other commands, `bench/cluster.py` and tests can find them.

    supervisor.py  the cluster on disk (cluster.json, node configs) and its node processes
    watcher.py     a WatchView stream from every node, and waits until every node agrees
    scenario.py    a whole pause and lift driven through the nodes, step by step
    commands.py    the command line
"""

from __future__ import annotations

from pausenet.errors import ClusterError
from pausenet.ops.cluster.commands import app, main, run
from pausenet.ops.cluster.scenario import ScenarioResult, run_scenario
from pausenet.ops.cluster.supervisor import (
    CLUSTER_FILE,
    Cluster,
    ClusterNode,
    create_cluster,
    free_ports,
    node_command,
    pid_is_node,
    rewrite_config,
)
from pausenet.ops.cluster.watcher import Watcher

__all__ = [
    "CLUSTER_FILE",
    "Cluster",
    "ClusterError",
    "ClusterNode",
    "ScenarioResult",
    "Watcher",
    "app",
    "create_cluster",
    "free_ports",
    "main",
    "node_command",
    "pid_is_node",
    "rewrite_config",
    "run",
    "run_scenario",
]
