"""Role-based access control, as Kubernetes' `plugin/pkg/auth/authorizer/rbac`.

- `attributes`: what a request asks to do (verb, group, resource, name,
  namespace, or a non-resource path), read from its path as Kubernetes'
  `RequestInfoFactory` reads it;
- `rules`: whether a PolicyRule allows those attributes, and whether one
  set of rules covers another (escalation prevention);
- `resolver`: the rules a user holds, from the bindings naming them;
- `authorizer`: the decision, the middleware that asks it of every
  request, and the 403 Forbidden body Kubernetes writes;
- `escalation`: the admission that refuses roles and bindings granting
  more than their author holds;
- `bootstrap`: the default cluster roles and bindings;
- `reviews`: the authorization.k8s.io access and rules reviews.
"""
