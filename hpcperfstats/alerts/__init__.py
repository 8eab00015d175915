"""Alerts to researchers about wasteful jobs: rules as data, daily digests, history.

``rules`` (which flagged jobs are worth a mail), ``store`` (the history
table: once per job and rule), ``digest`` (text and HTML), ``deliver``
(SMTP, webhook, dry run), ``send`` (a day's run). See docs/alerts.md.
"""
