"""The store's Lua scripts, read from the package's ``lua/`` folder, one way for all.

A script is atomic in Redis: every increment happens in it together with the marker
that says it happened (the call record), so a redelivered event, a replay after a crash
or a second worker racing on the same call changes nothing. The batched write scripts
share ``lua/batched.lua`` as a prelude (Redis runs one source per script, so it is
prepended here). Every script is run by its SHA (``EVALSHA``) and loaded where a node
does not know it (:class:`stream_app.core.store.client.Scripts`); what each reads and
returns is typed in :mod:`stream_app.core.store.codecs`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources

FOLDER = resources.files("stream_app.core.store") / "lua"


@dataclass(frozen=True)
class Script:
    name: str
    source: str = field(repr=False)
    sha: str = field(repr=False)


def load(name: str, batched: bool = False) -> Script:
    """The script ``lua/<name>.lua``, after ``lua/batched.lua`` if ``batched``."""
    source = (FOLDER / f"{name}.lua").read_text()
    if batched:
        source = (FOLDER / "batched.lua").read_text() + source
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


RECORD_INBOUND = load("record_inbound", batched=True)
CLASSIFY = load("classify", batched=True)
SET_NAME = load("set_name")
ADD_CONFIG_VERSION = load("add_config_version")
SUM_DAYS = load("sum_days")
ALL = (RECORD_INBOUND, CLASSIFY, SET_NAME, ADD_CONFIG_VERSION, SUM_DAYS)
