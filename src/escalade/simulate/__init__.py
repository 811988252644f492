"""``escalade simulate``: the real engine on a virtual clock and a throw-away database."""
