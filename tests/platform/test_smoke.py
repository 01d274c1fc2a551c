from __future__ import annotations

import httpx


async def test_signup_login_me_round_trip(app_client: httpx.AsyncClient) -> None:
    signup = await app_client.post(
        "/api/v1/auth/signup",
        json={"email": "Kim@Example.com", "password": "correct horse battery", "name": "Kim"},
    )
    assert signup.status_code == 201, signup.text
    assert signup.json()["email"] == "kim@example.com"
    login = await app_client.post(
        "/api/v1/auth/login",
        json={"email": "kim@example.com", "password": "correct horse battery"},
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    me = await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["role"] == "USER"
