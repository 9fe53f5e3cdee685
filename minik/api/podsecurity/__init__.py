"""Pod Security Standards: the levels, the namespace labels that pick them, and the checks.

Kubernetes' `k8s.io/pod-security-admission` (`api/helpers.go` for the labels,
`policy/check_*.go` for the checks, `policy/registry.go` for their order).
Pure functions over pod dicts: `minik.apiserver.podsecurity_admission` applies
them on writes.
"""
