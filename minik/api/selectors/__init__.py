"""Label and field selectors, parsed and matched as the Kubernetes API server does."""
