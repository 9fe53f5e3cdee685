"""Kubernetes' Job controller: pods run to completion, counted once, with back-off."""
