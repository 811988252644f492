"""Who may do what: people, API keys, scopes, the authority matrix, confidentiality and
the audit log.

Pure decisions live in ``scopes`` (what a principal may call), ``visibility`` (which
escalations a principal may see), ``authority`` (the policy's authority matrix applied to
a principal) and ``editing`` (who may change policies); ``credentials`` hashes passwords
(Argon2) and API keys (SHA-256 of a random secret); ``provision`` creates users and keys
and records each change in the audit log (the CLI and the API call it);
``ratelimit`` counts requests per key and per address. The FastAPI dependencies that
apply these to requests live in ``escalade.api.security``.
"""
