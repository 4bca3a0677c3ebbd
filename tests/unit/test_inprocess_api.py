"""The in-process Execution API speed-up: FastAPI builds a dependency graph once, overrides still apply.

Runs in a subprocess: the memoization is process-wide, and the rest of the session must see FastAPI as it is.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from fastapi import Depends, FastAPI
    from fastapi.dependencies import utils
    from fastapi.testclient import TestClient

    from airflow_cloudmarker.inprocess_api import speed_up_dependency_overrides

    def user(token: str = "none") -> str:
        return f"real {token}"

    def deny() -> str:
        return "denied"

    def allow() -> str:
        return "allowed"

    app = FastAPI()

    @app.get("/who")
    def who(name: str = Depends(user), n: int = 1) -> dict:
        return {"user": name, "n": n}

    assert speed_up_dependency_overrides() is True
    assert speed_up_dependency_overrides() is True  # twice: still one wrapper
    assert utils.get_dependant(path="/who", call=user) is utils.get_dependant(path="/who", call=user)
    assert utils.get_dependant(path="/who", call=user) is not utils.get_dependant(path="/who", call=deny)

    client = TestClient(app)
    assert client.get("/who", params={"token": "t", "n": 2}).json() == {"user": "real t", "n": 2}
    app.dependency_overrides[user] = deny
    assert [client.get("/who").json()["user"] for _ in range(3)] == ["denied"] * 3
    app.dependency_overrides[user] = allow  # changed between requests: the new override applies
    assert client.get("/who", params={"n": 5}).json() == {"user": "allowed", "n": 5}
    assert client.get("/who", params={"n": "x"}).status_code == 422  # validation still runs
    app.dependency_overrides.clear()
    assert client.get("/who", params={"token": "u"}).json()["user"] == "real u"
    print("ok")
    """
)


def test_dependency_graphs_are_built_once_and_overrides_still_apply():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
