import pytest


@pytest.fixture(autouse=True)
def _media_and_mail(settings, tmp_path):
    settings.EMAIL_FILE_PATH = tmp_path / "outbox"
