"""The domain APIs, one package each; enabled by the ``apps`` config key."""
