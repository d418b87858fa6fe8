"""Default hyperparameters of the registered agents, one readable file per algorithm family."""
