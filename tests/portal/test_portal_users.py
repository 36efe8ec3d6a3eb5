"""/users: admins create users, change roles, reset passwords and delete users; the last
admin stays. /account: everyone changes their own password, the current one required."""
import re
import threading

import pytest

from octopus_portal.auth import hasher
from octopus_portal.users import PASSWORD_MIN_CHARS

from .helpers import ADMIN_PASSWORD, ADMIN_USER, add_user, csrf_token, login

NEW_PASSWORD = re.compile(r'data-testid="new-password-value">([^<]+)<')
PASSWORD = "a long enough password"


def create(client, **form):
    data = {"csrf_token": csrf_token(client, "/users"), "username": "carol",
            "role": "operator", "password": PASSWORD, **form}
    return client.post("/users", data=data)


def post(client, path, **form):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **form})


def user_row(db, username):
    return db.execute("SELECT id, username, role, password_hash FROM users WHERE username = %s",
                      (username,)).fetchone()


def audited(db, action):
    return db.execute("SELECT actor, subject, detail FROM audit_log WHERE action = %s"
                      " ORDER BY id", (action,)).fetchall()


def test_admin_creates_a_user_with_a_typed_password(app, logged_in, db):
    response = create(logged_in)
    assert response.status_code == 201
    assert 'data-testid="new-password"' not in response.get_data(as_text=True)
    row = user_row(db, "carol")
    assert row["role"] == "operator" and row["password_hash"].startswith("$argon2id$")
    assert hasher.verify(row["password_hash"], PASSWORD)
    assert login(app.test_client(), "carol", PASSWORD).status_code == 302
    assert audited(db, "user.created") == [
        {"actor": ADMIN_USER, "subject": "carol",
         "detail": {"role": "operator", "password_generated": False}}]
    page = logged_in.get("/users").get_data(as_text=True)
    assert 'data-username="carol"' in page


def test_a_generated_password_is_shown_once_and_works(app, logged_in, db):
    response = create(logged_in, password="", role="viewer")
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    password = NEW_PASSWORD.search(response.get_data(as_text=True)).group(1)
    assert len(password) >= PASSWORD_MIN_CHARS
    assert password not in logged_in.get("/users").get_data(as_text=True)
    assert login(app.test_client(), "carol", password).status_code == 302
    assert audited(db, "user.created")[0]["detail"]["password_generated"] is True


@pytest.mark.parametrize("form,words", [
    ({"password": "short"}, "Password"),
    ({"username": ""}, "Username"),
    ({"username": "with space"}, "Username"),
    ({"username": "x" * 65}, "Username"),
    ({"username": "ADMIN"}, "taken"),  # names differ by more than case
    ({"role": "root"}, "Role"),
])
def test_a_bad_new_user_is_refused_and_nothing_stored(logged_in, db, form, words):
    response = create(logged_in, **form)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 1
    assert audited(db, "user.created") == []


def test_admin_changes_a_role_and_it_applies_at_once(app, logged_in, db):
    viewer = add_user(app, db, "viewer")
    assert viewer.get("/keys").status_code == 403
    user_id = user_row(db, "viewer")["id"]
    assert post(logged_in, f"/users/{user_id}/role", role="admin").status_code == 302
    assert user_row(db, "viewer")["role"] == "admin"
    assert viewer.get("/keys").status_code == 200  # the open session, not a new login
    assert audited(db, "user.role_changed") == [
        {"actor": ADMIN_USER, "subject": "viewer", "detail": {"role": ["viewer", "admin"]}}]


def test_an_admin_can_neither_demote_nor_delete_themself(logged_in, db):
    admin_id = user_row(db, ADMIN_USER)["id"]
    for path, form in ((f"/users/{admin_id}/role", {"role": "viewer"}),
                       (f"/users/{admin_id}/delete", {})):
        response = post(logged_in, path, **form)
        assert response.status_code == 400
        assert "yourself" in response.get_data(as_text=True)
    assert user_row(db, ADMIN_USER)["role"] == "admin"
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'user.%'"
                      ).fetchone()["n"] == 0


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, logged_in, db):
    """Whatever the interleaving, the row locks serve one change after the other: the
    second admin is no longer one when their change runs (403), so one admin remains."""
    db.execute("INSERT INTO users (username, password_hash, role) VALUES ('ada', %s, 'admin')",
               (hasher.hash(PASSWORD),))
    other = app.test_client()
    assert login(other, "ada", PASSWORD).status_code == 302
    requests = [(logged_in, user_row(db, "ada")["id"], csrf_token(logged_in, "/")),
                (other, user_row(db, ADMIN_USER)["id"], csrf_token(other, "/"))]
    statuses = []

    def demote(client, user_id, token):
        statuses.append(client.post(f"/users/{user_id}/role",
                                    data={"csrf_token": token, "role": "viewer"}).status_code)

    threads = [threading.Thread(target=demote, args=r) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302, 403]
    assert db.execute("SELECT count(*) AS n FROM users WHERE role = 'admin'"
                      ).fetchone()["n"] == 1


def test_admin_resets_a_password_and_the_users_sessions_end(app, logged_in, db):
    operator = add_user(app, db, "operator")
    user_id = user_row(db, "operator")["id"]
    response = post(logged_in, f"/users/{user_id}/password", password="the new long password")
    assert response.status_code == 302
    assert operator.get("/").status_code == 302  # logged out: the old password's session
    assert login(app.test_client(), "operator", "their password").status_code == 200
    assert login(app.test_client(), "operator", "the new long password").status_code == 302
    generated = post(logged_in, f"/users/{user_id}/password", password="")
    password = NEW_PASSWORD.search(generated.get_data(as_text=True)).group(1)
    assert login(app.test_client(), "operator", password).status_code == 302
    assert [r["detail"] for r in audited(db, "user.password_reset")] == \
        [{"password_generated": False}, {"password_generated": True}]
    assert post(logged_in, f"/users/{user_id}/password", password="short").status_code == 400


def test_own_password_is_not_reset_on_the_users_page(logged_in, db):
    admin_id = user_row(db, ADMIN_USER)["id"]
    response = post(logged_in, f"/users/{admin_id}/password", password="a brand new password")
    assert response.status_code == 400
    assert hasher.verify(user_row(db, ADMIN_USER)["password_hash"], ADMIN_PASSWORD)


def test_admin_deletes_a_user_whose_session_ends_and_whose_audit_rows_stay(app, logged_in, db):
    viewer = add_user(app, db, "viewer")
    user_id = user_row(db, "viewer")["id"]
    assert post(logged_in, f"/users/{user_id}/delete").status_code == 302
    assert user_row(db, "viewer") is None
    assert viewer.get("/").status_code == 302
    assert audited(db, "user.deleted") == [
        {"actor": ADMIN_USER, "subject": "viewer", "detail": {"role": "viewer"}}]
    logins = db.execute("SELECT actor, actor_id FROM audit_log WHERE action = 'login.succeeded'"
                        " AND actor = 'viewer'").fetchall()
    assert logins == [{"actor": "viewer", "actor_id": user_id}]  # who it was, still
    assert post(logged_in, "/users/999999/delete").status_code == 404


def test_everyone_changes_their_own_password_with_the_current_one(app, db):
    viewer = add_user(app, db, "viewer")
    other_session = app.test_client()
    assert login(other_session, "viewer", "their password").status_code == 302
    assert viewer.get("/account").status_code == 200
    for form, words in (({"current_password": "wrong"}, "Current password"),
                        ({"new_password": "short", "confirm_password": "short"}, "New password"),
                        ({"confirm_password": "not the same one"}, "Confirm")):
        data = {"current_password": "their password", "new_password": "my own new password",
                "confirm_password": "my own new password", **form}
        response = post(viewer, "/account/password", **data)
        assert response.status_code == 400 and words in response.get_data(as_text=True)
    assert hasher.verify(user_row(db, "viewer")["password_hash"], "their password")

    response = post(viewer, "/account/password", current_password="their password",
                    new_password="my own new password", confirm_password="my own new password")
    assert response.status_code == 302
    assert viewer.get("/account").status_code == 200  # this session goes on
    assert other_session.get("/").status_code == 302  # the other one has ended
    assert login(app.test_client(), "viewer", "my own new password").status_code == 302
    assert audited(db, "user.password_changed") == [
        {"actor": "viewer", "subject": "viewer", "detail": {}}]


def test_wrong_current_passwords_are_rate_limited_per_account(make_app, db):
    """A session left open is not a way to guess the account's password: after
    LOGIN_RATE_LIMIT wrong current passwords /account/password answers 429 with a message,
    even with the right one; each wrong one is in the audit log; other mistakes in the form
    do not count, and another account is not locked out by them."""
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    viewer, operator = add_user(app, db, "viewer"), add_user(app, db, "operator")
    right = {"new_password": "my own new password", "confirm_password": "my own new password"}
    for _ in range(3):  # a mistyped confirmation is not a guess
        response = post(viewer, "/account/password", current_password="their password",
                        new_password="my own new password", confirm_password="typo")
        assert response.status_code == 400
    for guess in ("guess 1", "guess 2", "guess 3"):
        assert post(viewer, "/account/password", current_password=guess, **right).status_code == 400
    refused = post(viewer, "/account/password", current_password="their password", **right)
    assert refused.status_code == 429
    assert "Too many wrong current passwords" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert hasher.verify(user_row(db, "viewer")["password_hash"], "their password")
    assert audited(db, "user.password_change_refused") == [
        {"actor": "viewer", "subject": "viewer", "detail": {}}] * 3
    # the limit is the account's: another user changes theirs
    assert post(operator, "/account/password", current_password="their password",
                **right).status_code == 302


def test_only_admins_see_the_users_and_audit_links(app, logged_in, db):
    page = logged_in.get("/").get_data(as_text=True)
    assert 'data-testid="nav-users"' in page and 'data-testid="nav-audit"' in page
    for role in ("operator", "viewer"):
        page = add_user(app, db, role).get("/").get_data(as_text=True)
        assert 'data-testid="nav-users"' not in page and 'data-testid="nav-audit"' not in page
        assert 'href="/account"' in page
