"""Network surgery: what a network's prunable units are and how to cut them exactly (dependency
and architecture groups, masks, the physically pruned copy and its proof, the analytic estimate)."""
