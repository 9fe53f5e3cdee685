"""The controllers that turn Services into endpoints, as Kubernetes' do.

- `endpoints`: the Endpoints controller (`pkg/controller/endpoint`): one
  core/v1 Endpoints per Service with a selector, ready pods under
  `addresses`, the others under `notReadyAddresses`;
- `endpointslice`: the EndpointSlice controller (`pkg/controller/endpointslice`):
  discovery.k8s.io/v1 slices of the same pods, with `ready`, `serving` and
  `terminating` conditions; what the proxy and the DNS server read;
- `mirroring`: the EndpointSlice mirroring controller
  (`pkg/controller/endpointslicemirroring`): user-managed Endpoints of a
  Service without a selector, mirrored into slices.

`pods` says which pods are endpoints of a Service and with which ports
(`podutil.FindPort`, `ShouldPodBeInEndpoints`); `slices` is the pure plan
shared by both slice controllers (which slices to create, update and delete
so that the wanted endpoints are there), `tracker` the memory of slices
written and not yet seen in the cache.
"""
