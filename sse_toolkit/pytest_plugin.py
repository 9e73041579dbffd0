"""Surface layer: the pytest plugin (registered through the ``pytest11`` entry point).

Fixtures arrive with the replay server; until then the plugin only registers itself.
"""
