"""Helpers of the AWS plugins: pure record shaping (``normalize``) and the hook/session plumbing (``session``).

``normalize`` imports no SDK, so event plugins and unit tests use it on plain dicts; ``session``
imports boto3 and the amazon provider lazily, inside its functions.
"""
