def test_healthz_reports_database_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_home_requires_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_home_shows_the_customers_details(client_logged_in, customer):
    response = client_logged_in.get("/")
    assert response.status_code == 200
    assert customer.full_name in response.content.decode()
    assert response["Cache-Control"].count("no-store") == 1
