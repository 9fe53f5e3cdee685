"""Label and field selectors, parsed and matched as the Kubernetes API server does.

- `labels`: `LabelSelector` (from a `labelSelector` query or a
  `metav1.LabelSelector` spec) and `workload_selector`;
- `label_parser`: apimachinery's label selector grammar;
- `requirements`: one `key op values` term, validated with Kubernetes' wording;
- `fields`: `FieldSelector` over the fields each kind makes selectable.
"""
