"""Pydantic models of the Kubernetes fields minik acts on.

One module per API group (`pod`, `volumes`, `core`, `apps`, `batch`,
`cluster`), `meta` for metadata and selectors, `base` for the model base
class and Kubernetes-worded field errors, `kinds` for the kind -> model map.
The models only read: a request body is validated, never rewritten, and
fields a model does not declare are kept (`extra="allow"`); the strict list
of fields that exist at all is `minik/api/schema.json`.
"""
