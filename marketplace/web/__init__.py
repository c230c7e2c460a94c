"""Blueprints by audience: auth, public, account, bureau, buyers, sellers."""

from __future__ import annotations

from functools import wraps

from flask import Flask, abort
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from marketplace.extensions import db, login_manager
from marketplace.models import User


def role_required(*roles: str):
    """Signed-in users of the given organisation kinds only (others get 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def send_project_document(document_id: int):
    """A project document as a PDF download, if the signed-in user may see it (else 404)."""
    from flask import send_file

    from marketplace.models import ProjectDocument
    from marketplace.services import registry
    from marketplace.services.access import get_scoped

    row = get_scoped(db.session, ProjectDocument, document_id, current_user)
    return send_file(registry.document_path(row), mimetype="application/pdf", as_attachment=True,
                     download_name=row.original_name)


@login_manager.user_loader
def _load_user(user_id: str):
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


def register_web(app: Flask) -> None:
    from marketplace.web import (
        account,
        auth,
        bureau,
        buyer_orders,
        buyers,
        certificates,
        dashboards,
        public,
        registry_public,
        sellers,
        webhooks,
    )

    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    for module in (public, registry_public, auth, account, bureau, buyers, buyer_orders, sellers, certificates,
                   webhooks, dashboards):
        app.register_blueprint(module.bp)

    from marketplace.services.quantities import display_tonnes, format_cny
    from marketplace.web.once import submission_key
    from marketplace.web.order_history import describe_note

    app.add_template_global(submission_key, "submission_key")
    app.add_template_filter(describe_note, "order_note")
    app.add_template_filter(display_tonnes, "tonnes")
    app.add_template_filter(lambda amount: f"{format_cny(amount)}", "cny")

    @app.context_processor
    def _layout():
        from flask_babel import get_locale

        from marketplace.web.navigation import navigation_for

        return {"navigation": navigation_for(current_user), "get_locale": get_locale}
