"""Local servers the integration and deployment tests talk to, one module per service.

The real clients (Azure and Google SDKs, elasticsearch, pymongo, requests, slack_sdk, smtplib)
make real requests to these, on 127.0.0.1 only:

* ``azure``: Azure Resource Manager and the AAD token endpoint, over HTTPS.
* ``gcp``: Cloud Resource Manager, Compute Engine and the OAuth token endpoint.
* ``elasticsearch``: the ``_bulk`` API; ``splunk``: the HTTP Event Collector; ``mongo``: a wire-level
  proxy in front of the nx-27017 MongoDB server. ``base`` holds the threaded HTTP server and the
  fault injection the Elasticsearch and HEC stand-ins share.
* ``slack``: the Slack Web API methods SlackAlert calls; ``smtp``: aiosmtpd in every TLS mode.
* ``airflow``: real Airflow services (``cloudmarker`` in scheduled mode, Celery workers) for the
  deployment tests.
* ``net``: ``free_port`` and ``port_open``, the only place tests pick a port.

``tests/`` is on ``sys.path`` and ``PYTHONPATH`` (tests/conftest.py), so ``servers.airflow`` also
imports in the Celery workers that Airflow starts.
"""
