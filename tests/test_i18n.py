"""Chinese first: every string a person reads is translated to zh_CN; English is one click away."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import CsrfClient

ROOT = Path(__file__).resolve().parent.parent
METHOD_MAP = [("marketplace/**.py", "python"), ("workers/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "lazy_ngettext": (1, 2)}


def test_every_message_in_code_and_templates_has_a_chinese_translation():
    with open(ROOT / "marketplace/translations/zh_Hans_CN/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string
                  and (m.string if isinstance(m.string, str) else all(m.string)) and not m.fuzzy}
    missing = set()
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT, METHOD_MAP, keywords=KEYWORDS):
        msgid = message if isinstance(message, str) else message[0]
        if msgid and msgid not in translated:
            missing.add(f"{filename}: {msgid}")
    assert not missing, "untranslated (add them to the zh_CN catalogue):\n" + "\n".join(sorted(missing))


def test_chinese_is_the_default_and_lang_switches_to_english_for_the_visit(client):
    assert "来自丽水乡村的森林碳汇" in client.get("/").get_data(as_text=True)
    assert "Forest carbon sinks from Lishui villages" in client.get("/?lang=en").get_data(as_text=True)
    english = client.get("/").get_data(as_text=True)
    assert "Forest carbon sinks from Lishui villages" in english and 'lang="en"' in english
    assert "来自丽水乡村的森林碳汇" in client.get("/?lang=zh_CN").get_data(as_text=True)


def test_a_users_language_choice_is_saved_and_follows_them_to_a_new_session(app, factory, login):
    user = factory.user("buyer")
    client = login(user.email)
    CsrfClient(client).post_form("/account/", {"lang": "en", "next": "/account/"}, action="/language")
    other_browser = app.test_client()
    CsrfClient(other_browser).post_form("/login", {"email": user.email, "password": "correct horse battery"})
    assert "My account" in other_browser.get("/account/").get_data(as_text=True)


def test_json_errors_follow_the_language_too(client):
    body = client.get("/api/v1/nothing-here?lang=en").get_json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"].startswith("Not found")
    assert client.get("/api/v1/nothing-here?lang=zh_CN").get_json()["error"]["message"].startswith("未找到")
