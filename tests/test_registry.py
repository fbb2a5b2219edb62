"""lsegeo.registry: lazy plug-in entries, errors that list the known names and name the missing package."""

from __future__ import annotations

import sys
import textwrap

import pytest

from lsegeo.errors import LsegeoError, MissingDependencyError, UnknownNameError
from lsegeo.registry import Registry


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path with two modules: one that works, one that needs an absent package."""
    (tmp_path / "lsegeo_test_plugin_ok.py").write_text(textwrap.dedent("""
        class Thing:
            def __init__(self, size=1):
                self.size = size
    """))
    (tmp_path / "lsegeo_test_plugin_needs.py").write_text(textwrap.dedent("""
        import lsegeo_no_such_package_xyz  # an optional third-party dependency that is not installed

        class Thing:
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("lsegeo_test_plugin_ok", "lsegeo_test_plugin_needs"):
        sys.modules.pop(name, None)


def test_names_and_check_import_nothing(plugin_dir):
    reg = Registry("gadget", {"ok": "lsegeo_test_plugin_ok:Thing", "needs": "lsegeo_test_plugin_needs:Thing"},
                   extras={"needs": "ml"})
    assert reg.names() == ["needs", "ok"]
    assert list(reg) == ["needs", "ok"] and len(reg) == 2 and "ok" in reg and "nope" not in reg
    assert reg.check("needs") == "needs"
    assert "lsegeo_test_plugin_ok" not in sys.modules
    assert "lsegeo_test_plugin_needs" not in sys.modules
    thing = reg.get("ok")
    assert "lsegeo_test_plugin_ok" in sys.modules
    assert thing.__name__ == "Thing"
    assert reg.get("ok") is thing                      # imported once, then cached
    assert reg.create("ok", size=3).size == 3


def test_unknown_name_lists_the_known_names():
    reg = Registry("gadget", {"beta": "x.y:z", "alpha": "x.y:w"})
    for call in (reg.get, reg.check, reg.create):
        with pytest.raises(UnknownNameError) as err:
            call("gamma")
        msg = str(err.value)
        assert "unknown gadget 'gamma'" in msg and "alpha, beta" in msg
        assert err.value.known == ["alpha", "beta"] and err.value.name == "gamma"
        assert isinstance(err.value, KeyError) and isinstance(err.value, LsegeoError)


def test_missing_dependency_names_the_package_and_the_extra(plugin_dir):
    reg = Registry("gadget", {"needs": "lsegeo_test_plugin_needs:Thing", "bare": "lsegeo_test_plugin_needs:Thing"},
                   extras={"needs": "ml"})
    with pytest.raises(MissingDependencyError) as err:
        reg.get("needs")
    msg = str(err.value)
    assert "lsegeo_no_such_package_xyz" in msg and "lsegeo[ml]" in msg and "'needs'" in msg
    assert isinstance(err.value, ImportError) and isinstance(err.value, LsegeoError)
    with pytest.raises(MissingDependencyError, match="pip install lsegeo_no_such_package_xyz"):
        reg.get("bare")                               # no extra: the package itself is named


def test_a_broken_lsegeo_module_is_not_a_missing_dependency():
    reg = Registry("gadget", {"broken": "lsegeo.no_such_module_xyz:Thing"})
    with pytest.raises(ModuleNotFoundError) as err:
        reg.get("broken")
    assert not isinstance(err.value, MissingDependencyError)


def test_register_add_and_replace():
    reg: Registry = Registry("gadget")

    @reg.register("one")
    def one():
        return 1

    assert reg.get("one") is one and reg.create("one") == 1
    with pytest.raises(ValueError, match="already registered"):
        reg.add("one", lambda: 2)
    reg.add("one", lambda: 2, replace=True)
    assert reg.create("one") == 2                      # replacing drops the cached object
    with pytest.raises(ValueError, match="module:attribute"):
        reg.add("bad", "no_colon_here")
    assert "gadget" in repr(reg) and "one" in repr(reg)


def test_unknown_name_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(UnknownNameError("model", "x", ["hbv"])))
    assert (err.kind, err.name, err.known) == ("model", "x", ["hbv"])
    assert str(err) == "unknown model 'x'; known models: hbv"
