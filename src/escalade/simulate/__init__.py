"""``escalade simulate``: the real engine on a virtual clock and a throw-away database."""

# The throw-away stores a scenario can run on (``--store``): ADR 0005.
STORES = ("memory", "sqlite")
