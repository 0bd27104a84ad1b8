import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_database_is_postgres():
    from django.db import connection

    assert connection.vendor == "postgresql"
