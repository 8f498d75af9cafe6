"""Node classes: the shared contract, the registry, generated model nodes."""
