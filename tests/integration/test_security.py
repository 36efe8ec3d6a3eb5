"""Acceptance 5: no open Node-RED admin API, no portal page or live stream without login.
(No anonymous MQTT and no wrong password on any listener: test_mqtt_tls.py.)"""
import pytest
import requests
import socketio

from tests.integration.conftest import wait_for


@pytest.mark.parametrize("path", ["/flows", "/nodes", "/settings/user"])
def test_nodered_admin_api_needs_a_token(platform, path):
    assert requests.get(platform.nodered_url + path, timeout=10).status_code == 401
    token = platform.nodered_token()
    answer = requests.get(platform.nodered_url + path, timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


def test_nodered_refuses_a_wrong_password(platform):
    answer = requests.post(platform.nodered_url + "/auth/token", timeout=10, data={
        "client_id": "node-red-admin", "grant_type": "password", "scope": "*",
        "username": platform.config["NODERED_ADMIN_USER"], "password": "wrong"})
    assert answer.status_code in (401, 403)


@pytest.mark.parametrize("path", ["/", "/rejects"])
def test_portal_pages_need_login(platform, path):
    answer = requests.get(platform.portal_url + path, timeout=10, allow_redirects=False)
    assert answer.status_code in (302, 303) and "/login" in answer.headers["Location"]
    session = platform.portal_session()
    assert session.get(platform.portal_url + path, timeout=10).status_code == 200


def test_portal_refuses_a_wrong_password(platform):
    session = requests.Session()
    session.post(platform.portal_url + "/login", timeout=10,
                 data={"username": platform.config["PORTAL_ADMIN_USER"], "password": "wrong"})
    answer = session.get(platform.portal_url + "/", timeout=10, allow_redirects=False)
    assert answer.status_code in (302, 303)


def test_socketio_needs_login(platform):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(platform.portal_url, wait_timeout=10)
    wait_for(lambda: not client.connected, 5, what="the refused client to be disconnected")
