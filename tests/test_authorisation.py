"""One organisation-scoped lookup: another organisation's object is a 404, never a leak."""

import pytest

from marketplace.accounts.models import Organisation, User
from marketplace.core.access import get_scoped, scoped_select
from marketplace.core.errors import NotFound


def test_an_organisation_sees_its_own_users_and_not_anothers(factory, session):
    alice = session.get(User, factory.user("seller").id)
    bob = factory.user("seller")
    assert get_scoped(session, User, alice.id, alice) is alice
    with pytest.raises(NotFound):
        get_scoped(session, User, bob.id, alice)
    with pytest.raises(NotFound):
        get_scoped(session, Organisation, bob.organisation_id, alice)
    visible = session.scalars(scoped_select(User, alice)).all()
    assert visible == [alice]


def test_a_missing_id_and_a_foreign_id_are_indistinguishable(factory, session):
    alice = session.get(User, factory.user("buyer").id)
    bob = factory.user("buyer")
    errors = []
    for object_id in (bob.id, 999_999, "not-a-number"):
        with pytest.raises(NotFound) as caught:
            get_scoped(session, User, object_id, alice)
        errors.append((caught.value.status, str(caught.value.message)))
    assert len(set(errors)) == 1


def test_bureau_staff_see_every_organisation(factory, session):
    staff = session.get(User, factory.user("bureau").id)
    seller = factory.user("seller")
    assert get_scoped(session, Organisation, seller.organisation_id, staff).id == seller.organisation_id
    with pytest.raises(NotFound):
        get_scoped(session, Organisation, seller.organisation_id, staff, bureau_sees_all=False)


def test_bureau_pages_answer_404_for_unknown_organisations(login, factory):
    staff = factory.user("bureau")
    client = login(staff.email)
    assert client.get("/bureau/organisations/987654").status_code == 404
