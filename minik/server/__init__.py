"""minik.server: the process wiring of `minik up`, like k3s' server.

Which components run in the server process and in what order is decided
here and nowhere else: `process.serve` opens the store, starts the API
server (`minik.apiserver`, which serves HTTP and knows nothing of the
rest), then `components` starts the scheduler, the controllers and the
node agent, each a client of the API like any other; a stop ends them in
the reverse order. `python -m minik.server` (what `minik up` runs) is
`__main__`.

It is the only package of minik that imports the node agent and the pod
network (an import contract in pyproject.toml says so). `components`, which
does, is imported only once the API serves, off the event loop, so that
the API does not wait for the Docker SDK or the controllers to load.
"""
