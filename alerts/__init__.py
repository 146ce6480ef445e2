"""Alert rules over the stored samples, their states, and notifications to receivers.

`model` holds the shapes every part shares: what a firing alert is, the notification a group
of them becomes, and the record of one delivery attempt. Rules and their evaluation read and
write through `storage` only; `notify` sends to receivers (HTTP webhooks, Slack-compatible
webhooks, SMTP) and never blocks the caller on a slow receiver. See docs/ALERTS.md.
"""
