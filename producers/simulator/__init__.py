"""Realistic activity audit-log traffic for a multi-tenant SaaS.

:class:`Simulator` yields ``ActivityEvent`` dicts (``schemas.event``) valid for the current
schema, shaped the way ``schemas.codec.encode`` expects them. The traffic looks like a real
platform's:

* a few accounts are much busier than the rest, and each account has a stable pool of users
  (one owner, some admins, members and custom roles) and of resources (folders, recipes,
  connections, lookup tables, API endpoints, ...) that the activities create, rename, move and
  delete as they go;
* logins dominate (about a third of all events), failed logins carry the reason and the login
  method, recipes are started and stopped all the time, and audit-log streaming settings change
  rarely; every activity of the catalog has a weight above zero;
* a user who switches team produces ``user_switched_team`` with ``details.activity ==
  "switch_team"`` in the account left and, when the target team is simulated too, a
  ``user_login`` carrying the same detail in the account joined;
* ``recorded_at`` never goes backwards; ``occurred_at`` is milliseconds earlier, except for
  ``late_fraction`` of the events which are recorded minutes to hours late.

Timestamps come from a synthetic clock (about 20 events a second from ``start``, however fast
events are drawn) or, with ``clock="wall"``, from the system clock as events are drawn. With a
seed the sequence is reproducible, event ids included, under either clock; give ``start`` too
to reproduce the synthetic timestamps. IP addresses come from the documentation ranges
(RFC 5737) and domains end in ``.example``.

Modules: ``config`` (what to simulate), ``activities`` (per-activity frequency and actors),
``vocabulary`` (the words drawn from), ``state`` and ``world`` (what the simulation remembers),
``people`` (accounts and members), ``resources`` and ``naming`` (resource pools and names),
``handlers`` (what each activity does), ``clock`` (timestamps), ``assembly`` (the event) and
``engine`` (the draw loop).
"""

from auditstream.producers.simulator.activities import ACTIVITY_WEIGHTS
from auditstream.producers.simulator.config import SimulatorConfig
from auditstream.producers.simulator.engine import Simulator

__all__ = ["ACTIVITY_WEIGHTS", "Simulator", "SimulatorConfig"]
