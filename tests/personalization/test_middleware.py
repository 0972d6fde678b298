import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from personalization.middleware import AnonymousIdMiddleware


def run(request, use_id):
    def view(request):
        if use_id:
            str(request.personalization_anonymous_id)
        return HttpResponse("ok")

    return AnonymousIdMiddleware(view)(request)


def test_no_cookie_is_set_for_a_visitor_nothing_was_tracked_for():
    response = run(RequestFactory().get("/"), use_id=False)
    assert "pzn_aid" not in response.cookies


def test_a_cookie_is_issued_when_the_id_is_used_and_kept_afterwards():
    response = run(RequestFactory().get("/"), use_id=True)
    issued = response.cookies["pzn_aid"]
    assert issued["httponly"] and len(issued.value) == 32

    request = RequestFactory().get("/", HTTP_COOKIE=f"pzn_aid={issued.value}")
    response = run(request, use_id=True)
    assert str(request.personalization_anonymous_id) == issued.value
    assert "pzn_aid" not in response.cookies


@pytest.mark.parametrize("tampered", ["x", "<script>", "a" * 100])
def test_a_malformed_cookie_is_replaced(tampered):
    request = RequestFactory().get("/", HTTP_COOKIE=f"pzn_aid={tampered}")
    response = run(request, use_id=True)
    assert response.cookies["pzn_aid"].value != tampered
