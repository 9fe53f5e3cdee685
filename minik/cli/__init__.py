"""The `minik` command line: instance lifecycle and kubectl-like verbs."""
