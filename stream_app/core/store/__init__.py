"""Redis: the key layout, the Lua scripts and their typed codecs, the client, the counter store."""
