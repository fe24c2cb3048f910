"""`python -m pausenet.ops.cluster`: the local-cluster command line (scripts/cluster)."""

from pausenet.ops.cluster.commands import main

main()
