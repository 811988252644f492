"""Outbound channels: how a queued message reaches a person.

One module per channel, each a small class with ``send(message)`` (the engine's
``Channel`` protocol) that raises with the provider's error when delivery fails:
``email`` (SMTP, STARTTLS or SMTPS), ``slack`` (incoming webhook, Block Kit), ``teams``
(Workflows webhook, Adaptive Card), ``webhook`` (JSON signed with HMAC-SHA256),
``pagerduty`` (Events API v2), ``opsgenie`` (Alert API), ``twilio`` (SMS and voice by a
Twilio-style form POST) and ``apprise`` (everything Apprise reaches).

``router.PolicyChannels`` builds the instances a policy's ``channels:`` section declares
(secrets from the environment or files) and picks one per message by its channel, team,
person, priority and audience. ``links`` signs the action links every message carries.
"""
