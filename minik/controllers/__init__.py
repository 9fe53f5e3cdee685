"""minik.controllers: the controller manager and the controllers it runs.

Each controller follows one shape (see `replicaset`): informer handlers
compute a `namespace/name` key and add it to a work queue; one
level-triggered sync re-reads the object from the cache and reconciles.
The informers, work queues, event recorder and clock they stand on are
`minik.machinery`'s; `expectations` (what a controller has asked for but
not yet seen) and `podcontrol` are the controllers' own. The deployment
controller, with its rollout rules, is a package of its own (`deployment`).
Everything reaches the server only through `minik.client.aio.AsyncClient`.
"""
