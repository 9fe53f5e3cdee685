"""The PATCH formats kubectl sends, and the three-way patch of client-side `kubectl apply`.

- `json_patch`: RFC 7386 JSON merge patch and RFC 6902 JSON patch, which
  need no schema;
- `strategic`: applying a Kubernetes strategic merge patch (SMP);
- `three_way`: computing the SMP client-side apply sends, from the
  last-applied configuration, the manifest and the live object;
- `merge_keys`: what the two SMP halves share, the list merge keys that
  stand in for Go's struct tags, the directive names, list element identity;
- `json_values`: `PatchError` and JSON's own equality.

Everything here is a pure function on JSON-shaped values: inputs are never
mutated and results never share structure with them.
"""
