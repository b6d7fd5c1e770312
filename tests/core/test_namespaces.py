"""register_anndata_namespace."""

from __future__ import annotations

import numpy as np
import pytest

from annio._core import AnnData, register_anndata_namespace


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for name in names:
        if name in AnnData.__dict__:
            delattr(AnnData, name)


def test_basic_and_caching(cleanup):
    cleanup.append("myns_basic")

    @register_anndata_namespace("myns_basic")
    class NS:
        def __init__(self, adata: AnnData) -> None:
            self._adata = adata

        def n(self) -> int:
            return self._adata.n_obs

    a = AnnData(np.zeros((3, 2)))
    assert a.myns_basic.n() == 3
    assert a.myns_basic is a.myns_basic and "myns_basic" in a.__dict__
    assert AnnData.myns_basic is NS
    b = AnnData(np.zeros((1, 2)))
    assert b.myns_basic.n() == 1 and b.myns_basic is not a.myns_basic


def test_override_warns(cleanup):
    cleanup.append("myns_over")

    class NS:
        def __init__(self, adata: AnnData) -> None:
            pass

    register_anndata_namespace("myns_over")(NS)
    with pytest.warns(UserWarning, match=r"Overriding existing custom namespace 'myns_over' \(on 'AnnData'\)"):
        register_anndata_namespace("myns_over")(NS)


@pytest.mark.parametrize("name", ["X", "obs_names", "copy", "layers", "strings_to_categoricals"])
def test_reserved(name):
    class NS:
        def __init__(self, adata: AnnData) -> None:
            pass

    with pytest.raises(AttributeError, match=f"cannot override reserved attribute '{name}'"):
        register_anndata_namespace(name)(NS)


class NoParam:
    def __init__(self) -> None:
        pass


class NoAnnot:
    def __init__(self, adata) -> None:
        pass


class WrongName:
    def __init__(self, x: AnnData) -> None:
        pass


class WrongType:
    def __init__(self, adata: int) -> None:
        pass


class BothWrong:
    def __init__(self, x: int) -> None:
        pass


class Unresolvable:
    def __init__(self, adata: Undefined) -> None:  # noqa: F821
        pass


class Sub(AnnData):
    pass


class SubclassAnnot:
    def __init__(self, adata: Sub) -> None:
        pass


@pytest.mark.parametrize(
    ("cls", "exc", "msg"),
    [
        (NoParam, TypeError, "Namespace initializer must accept a AnnData instance as the second parameter."),
        (NoAnnot, AttributeError, "Namespace initializer's second parameter must be annotated as the 'AnnData' class, got empty annotation."),
        (WrongName, TypeError, "Namespace initializer's second parameter must be named 'adata', got 'x'."),
        (WrongType, TypeError, "Namespace initializer's second parameter must be annotated as the 'AnnData' class, got 'int'."),
        (BothWrong, TypeError, "Namespace initializer's second parameter must be named 'adata', got 'x'. And must be annotated as 'AnnData', got 'int'."),
        (SubclassAnnot, TypeError, "Namespace initializer's second parameter must be annotated as the 'AnnData' class, got 'Sub'."),
        (Unresolvable, NameError, None),
    ],
)
def test_signature_checks(cls, exc, msg):
    with pytest.raises(exc) as err:
        register_anndata_namespace("never_registered")(cls)
    if msg is not None:
        assert str(err.value) == msg
    assert "never_registered" not in AnnData.__dict__


def test_string_annotation_resolves(cleanup):
    cleanup.append("myns_str")

    class NS:
        def __init__(self, adata: AnnData) -> None:
            self.adata = adata

    register_anndata_namespace("myns_str")(NS)
    a = AnnData(np.zeros((1, 1)))
    assert a.myns_str.adata is a
