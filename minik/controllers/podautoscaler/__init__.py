"""The HorizontalPodAutoscaler controller, as Kubernetes' `pkg/controller/podautoscaler`.

Split by concept: `metrics` reads the resource metrics API (metrics.k8s.io
PodMetrics) through the client, as Kubernetes' `metrics/` does;
`replicas` is the replica calculation (`replica_calculator.go`: pod
grouping, tolerance, missing and unready pods); `behavior` holds the
recommendation and scale-event histories and applies stabilization windows
and scaling policies; `status` sets conditions and the status;
`controller` is the level-triggered loop that reads the target's `scale`,
asks for a size and writes it.
"""
