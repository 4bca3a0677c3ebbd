"""GCP helpers shared by cloud and event plugins (public: users' own GCP plugins may import them).

``api`` calls the GCP APIs (clients per thread, pages, retries, error classification),
``credentials`` loads a key file, an Airflow connection or Application Default Credentials, and
``firewall`` shapes GCP firewalls as common firewall rules.
"""
