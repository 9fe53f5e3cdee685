"""The PATCH formats kubectl sends, and the three-way patch of client-side `kubectl apply`."""
