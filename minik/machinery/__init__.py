"""minik.machinery: the shared machinery every component stands on.

Named after what DESIGN.md calls it ("Shared machinery"); it is minik's
client-go `tools/cache` and `util/workqueue`, kept apart from every user so
that controllers, the scheduler, the node agent and the coming Service
proxy all import it and none of them owns it:

- `informer`: list+watch one resource into an indexed cache (`Indexer`),
  with add/update/delete handlers and periodic resync; `shared_informers`
  gives one informer per resource to all controllers of a process;
- `workqueue`: one sync per key at a time, collapsed adds, per-key back-off,
  and `run_workers` to drive a sync function from it; `requeue.Requeue` is
  the one way a sync asks to be run again; `metrics` counts queues and
  reconciles;
- `events`: the event recorder (client-go's broadcaster and correlator);
- `clock`: the one `Clock` (monotonic `now`, `wall` time for timestamps,
  `call_later`, and `sleep` on it) with a `ManualClock` for tests;
  `backoff`: the one exponential back-off (per key, base doubling to a cap,
  with jitter and expiry where a user wants them);
- `supervisor`: named, supervised background tasks.

Two neighbours stay out by decision: controller expectations
(`minik.controllers.expectations`) serve only controllers that create and
delete pods in bursts (the scheduler's assumed pods and the agent's settled
fingerprints are their own kinds of memory), and `minik.httpstream` is a
wire protocol library, not component machinery.

It imports nothing of minik above `minik.api` and `minik.client` (an
import contract in pyproject.toml says so), and this package imports none
of its modules: a component loads only what it uses.
"""
