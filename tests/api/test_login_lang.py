"""The sign-in page speaks the language the studio's UI would: ``?lang=`` first, then the remembered choice (the
``tunesmith_lang`` cookie the UI's header switch sets), then the browser's ``Accept-Language``, else English; the
redirect from a locked page keeps the ``?lang=`` the page was asked with (and signing in hands it back to the
studio's page), and a wrong token is refused in that language too."""

import pytest
from fastapi.testclient import TestClient

from backend.api.login import accept_language, page_lang
from backend.api.main import create_app
from backend.settings import Settings

TOKEN = "t0ken-for-tests-0123456789abcdef"
ZH_WORDS = ("访问令牌", "登录", 'lang="zh-CN"')
EN_WORDS = ("Access token", "Sign in", 'lang="en"')


@pytest.fixture
def locked(tmp_path):
    app = create_app(Settings(home=tmp_path / "home", token=TOKEN), start_runner=False, register_builtins=False)
    with TestClient(app) as client:
        yield client


def assert_page(text: str, words: tuple[str, ...], absent: tuple[str, ...]) -> None:
    for word in words:
        assert word in text, word
    for word in absent:
        assert word not in text, word


def test_english_by_default_and_chinese_from_the_browser_language(locked):
    assert_page(locked.get("/login").text, EN_WORDS, ("访问令牌",))
    zh = locked.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert zh.status_code == 200
    assert_page(zh.text, ZH_WORDS, ("Access token",))
    # a browser preferring a language the studio lacks, then English, gets English
    assert_page(locked.get("/login", headers={"Accept-Language": "fr-FR, en;q=0.5, zh;q=0.1"}).text, EN_WORDS, ())


def test_the_url_beats_the_cookie_which_beats_the_browser(locked):
    locked.cookies.set("tunesmith_lang", "zh")
    assert_page(locked.get("/login", headers={"Accept-Language": "en"}).text, ZH_WORDS, ("Access token",))
    assert_page(locked.get("/login?lang=en").text, EN_WORDS, ("访问令牌",))
    locked.cookies.clear()
    assert_page(locked.get("/login?lang=zh-TW").text, ZH_WORDS, ())
    assert_page(locked.get("/login?lang=xx").text, EN_WORDS, ())  # unknown: falls through to the default


def test_redirect_keeps_the_language_and_a_wrong_token_is_refused_in_it(locked):
    page = locked.get("/?lang=zh", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?lang=zh"
    assert locked.get("/", follow_redirects=False).headers["location"] == "/login"
    form = locked.get("/login?lang=zh").text
    assert 'action="login?lang=zh"' in form and 'href="login?lang=en"' in form  # the form posts back in zh
    assert 'action="login"' in locked.get("/login", headers={"Accept-Language": "zh"}).text  # nothing to pin
    wrong = locked.post("/login?lang=zh", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "这不是此工作室的访问令牌" in wrong.text and TOKEN not in wrong.text
    wrong_en = locked.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert "not the access token" in wrong_en.text
    ok = locked.post("/login?lang=zh", data={"token": TOKEN}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/?lang=zh"  # the studio opens in Chinese too


def test_accept_language_ranks_by_quality_and_skips_refused_languages():
    assert accept_language("en;q=0.3, zh-CN;q=0.8") == "zh"
    assert accept_language("zh;q=0, en") == "en"
    assert accept_language("fr, de;q=0.5") is None
    assert accept_language("en;q=bad, zh") == "zh"
    scope = {"query_string": b"", "headers": [(b"accept-language", b"zh-Hans")]}
    assert page_lang(scope) == "zh"
