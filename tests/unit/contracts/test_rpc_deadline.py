"""A request's deadline: once its caller stopped waiting, a consumer must not apply it."""

from contracts.rpc import DEADLINE_HEADER, deadline_passed


def test_a_request_past_its_deadline_is_expired_and_one_before_it_is_not() -> None:
    assert deadline_passed({DEADLINE_HEADER: 100_000}, now=100.5)
    assert not deadline_passed({DEADLINE_HEADER: 100_000}, now=99.5)


def test_a_request_without_a_readable_deadline_never_expires() -> None:
    assert not deadline_passed(None, now=1e12)
    assert not deadline_passed({}, now=1e12)
    assert not deadline_passed({DEADLINE_HEADER: "soon"}, now=1e12)
