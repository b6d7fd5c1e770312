"""Text, Excel, plain HDF5, Matrix Market and umi_tools readers against the real anndata."""

from __future__ import annotations

import gzip
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import annio
import annio.io as aio
from annio.errors import FormatError
from annio.testing import assert_equal

anndata = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop

TEXT_CASES = {
    "header_and_names.csv": ",g1,g2,g3\nc1,1,2,3\nc2,4,5,6\n",
    "header_only.csv": "g1,g2,g3\n1,2,3\n4,5,6\n",
    "numbers_only.csv": "1,2,3\n4,5,6\n",
    "quoted.csv": '"g1","g2"\n"c1",1,2\n"c2",3,4\n',
    "whitespace.txt": "a b c\nr1 1 2 3\nr2 4 5   6\n",
    "comment_header.txt": "# comment line\n#\tg1\tg2\nc1\t1\t2\nc2\t3\t4\n",
    "comment_then_header.txt": "# x\ng1\tg2\nc1\t1\t2\nc2\t3\t4\n",
    "names_no_header.txt": "c1\t1\t2\nc2\t3\t4\n",
    "named_corner.txt": "x\tg1\tg2\nc1\t1\t2\nc2\t3\t4\n",
    "blank_lines.txt": "\n\ng1 g2\n1 2\n\n3 4\n",
}


def _read(module, path, **kw):
    reader = module.read_csv if path.suffix == ".csv" else module.read_text
    return reader(path, **kw)


@pytest.mark.parametrize("name", sorted(TEXT_CASES))
@pytest.mark.parametrize("kw", [{}, {"dtype": "int64"}, {"first_column_names": True}])
def test_text_like_anndata(tmp_path, name, kw):
    path = tmp_path / name
    path.write_text(TEXT_CASES[name])
    try:
        theirs = _read(anndata.io, path, **kw)
    except ValueError:
        with pytest.raises(FormatError):
            _read(aio, path, **kw)
        return
    ours = _read(aio, path, **kw)
    assert_equal(ours, theirs, exact=True)


def test_text_gzip_and_iterator(tmp_path):
    text = TEXT_CASES["header_and_names.csv"]
    with gzip.open(tmp_path / "a.csv.gz", "wt") as f:
        f.write(text)
    expected = anndata.io.read_csv(iter(text.splitlines(keepends=True)))
    assert_equal(aio.read_csv(tmp_path / "a.csv.gz"), expected, exact=True)
    assert_equal(aio.read_csv(iter(text.splitlines(keepends=True))), expected, exact=True)


def test_text_comment_header_of_wrong_length_is_ignored(tmp_path):
    # anndata fails on this file (it takes "# another" as a 1-name header); annio ignores it
    path = tmp_path / "d.txt"
    path.write_text("# comment\n# another\nc1\t1\t2\nc2\t3\t4\n")
    ours = aio.read_text(path)
    assert list(ours.obs_names) == ["c1", "c2"] and list(ours.var_names) == ["0", "1"]
    np.testing.assert_array_equal(ours.X, [[1, 2], [3, 4]])


def test_text_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n")
    with pytest.raises(FormatError, match=r"bad.csv: data line 2 has 1 fields"):
        aio.read_csv(bad)
    (tmp_path / "empty.csv").write_text("# only a comment\n")
    with pytest.raises(FormatError, match="no data lines"):
        aio.read_csv(tmp_path / "empty.csv")


@hsettings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.lists(st.integers(-1000, 1000), min_size=3, max_size=3), min_size=1, max_size=6),
    names=st.booleans(),
    header=st.booleans(),
    sep=st.sampled_from([",", "\t"]),
)
def test_text_round_trip_property(tmp_path_factory, values, names, header, sep):
    path = tmp_path_factory.mktemp("t") / "x.csv"
    lines = []
    if header:
        lines.append(sep.join((["" ] if names else []) + [f"g{j}" for j in range(3)]))
    for i, row in enumerate(values):
        lines.append(sep.join(([f"c{i}"] if names else []) + [str(v) for v in row]))
    path.write_text("\n".join(lines) + "\n")
    ours = aio.read_csv(path, delimiter=sep)
    assert_equal(ours, anndata.io.read_csv(path, delimiter=sep), exact=True)
    np.testing.assert_array_equal(ours.X, np.array(values, dtype=np.float32))


def test_write_csvs_like_anndata(tmp_path):
    obs = pd.DataFrame({"c": pd.Categorical(["a", "b", "a", "b"]), "n": [1, 2, 3, 4]}, index=list("wxyz"))
    kw = dict(X=np.arange(12.0).reshape(4, 3), obs=obs, obsm={"X_pca": np.arange(8.0).reshape(4, 2)},
              varm={"v": np.ones((3, 2))}, uns={"arr": np.array([1, 2]), "s": "str"})
    for sep in (",", "\t"):
        anndata.AnnData(**kw).write_csvs(tmp_path / f"theirs{sep!r}", skip_data=False, sep=sep)
        annio.AnnData(**kw).write_csvs(tmp_path / f"ours{sep!r}", skip_data=False, sep=sep)
        for name in ("X.csv", "obs.csv", "var.csv", "obsm.csv", "varm.csv", "uns/arr.csv", "uns/s.csv"):
            assert (tmp_path / f"ours{sep!r}" / name).read_text() == (tmp_path / f"theirs{sep!r}" / name).read_text(), name
    # a nested mapping becomes a folder (anndata fails on it); skip_data leaves X out
    ad = annio.AnnData(**kw)
    ad.uns["d"] = {"x": np.array([1.0, 2.0]), "y": 3}
    ad.write_csvs(tmp_path / "nested")
    assert (tmp_path / "nested" / "uns" / "d" / "x.csv").read_text() == "1.0\n2.0\n"
    assert not (tmp_path / "nested" / "X.csv").exists()
    aio.write_csvs(tmp_path / "sparse", annio.AnnData(sp.csr_matrix(np.eye(3))), skip_data=False)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "sparse" / "X.csv", delimiter=","), np.eye(3))


def test_excel_like_anndata(tmp_path):
    pytest.importorskip("openpyxl")
    df = pd.DataFrame({"name": ["c1", "c2", "c3"], "g1": [1, 2, 3], "g2": [4.5, 5, 6]})
    with pd.ExcelWriter(tmp_path / "x.xlsx") as writer:
        df.to_excel(writer, sheet_name="other", index=False)
        df.to_excel(writer, sheet_name="S", index=False)
    for sheet in ("S", 1):
        theirs = anndata.io.read_excel(tmp_path / "x.xlsx", sheet)
        ours = aio.read_excel(tmp_path / "x.xlsx", sheet)
        assert_equal(ours, theirs)  # values; anndata leaves X as object, annio honours dtype
        assert ours.X.dtype == np.float32
    assert aio.read_excel(tmp_path / "x.xlsx", "S", dtype="float64").X.dtype == np.float64


def test_hdf_like_anndata(tmp_path):
    with h5py.File(tmp_path / "h.h5", "w") as f:
        f["m"] = np.arange(6.0).reshape(2, 3)
        f["row_names"] = np.array([b"r1", b"r2"])
        f["col_names"] = np.array([b"a", b"b", b"c"])
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["m"] = np.arange(6).reshape(2, 3)
    ours = aio.read_hdf(tmp_path / "h.h5", "m")
    theirs = anndata.io.read_hdf(tmp_path / "h.h5", "m")
    np.testing.assert_array_equal(ours.X, theirs.X)
    # anndata leaves the names as bytes; annio decodes them
    assert list(ours.obs_names) == [x.decode() for x in theirs.obs_names] == ["r1", "r2"]
    assert list(ours.var_names) == ["a", "b", "c"]
    assert_equal(aio.read_hdf(tmp_path / "plain.h5", "m"), anndata.io.read_hdf(tmp_path / "plain.h5", "m"), exact=True)
    with pytest.raises(KeyError, match="no dataset 'nope'; the file has: m"):
        aio.read_hdf(tmp_path / "plain.h5", "nope")


@pytest.mark.parametrize("kind", ["float", "integer", "dense", "gz"])
def test_mtx_like_anndata(tmp_path, kind):
    m = sp.random(50, 30, density=0.2, format="coo", random_state=0)
    path = tmp_path / "m.mtx"
    if kind == "integer":
        m.data = np.ceil(m.data * 10)
        scipy.io.mmwrite(path, m, field="integer")
    elif kind == "dense":
        scipy.io.mmwrite(path, m.toarray())
    elif kind == "gz":
        path = tmp_path / "m.mtx.gz"
        with gzip.open(path, "wb") as f:
            scipy.io.mmwrite(f, m)
    else:
        scipy.io.mmwrite(path, m)
    ours = aio.read_mtx(path)
    theirs = anndata.io.read_mtx(path) if kind != "gz" else anndata.io.read_mtx(_gunzip(path))
    assert_equal(ours, theirs, exact=True)
    assert sp.isspmatrix_csr(ours.X)
    assert aio.read_mtx(path, dtype="float64").X.dtype == np.float64


def _gunzip(path):
    out = path.with_suffix("")
    out.write_bytes(gzip.decompress(path.read_bytes()))
    return out


def test_mtx_garbage_is_a_format_error(tmp_path):
    (tmp_path / "bad.mtx").write_text("not a matrix market file\n1 2 3\n")
    with pytest.raises(FormatError, match="bad.mtx: not a readable Matrix Market file"):
        aio.read_mtx(tmp_path / "bad.mtx")


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_umi_tools_like_anndata(tmp_path, dtype):
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in rng.permutation(20)]
    cells = ["".join(rng.choice(list("ACGT"), 8)) for _ in range(15)]
    rows = {(g, c): int(rng.integers(1, 9)) for g in genes for c in cells if rng.random() < 0.3}
    with gzip.open(tmp_path / "u.tsv.gz", "wt") as f:
        f.write("gene\tcell\tcount\n" + "".join(f"{g}\t{c}\t{n}\n" for (g, c), n in rows.items()))
    ours = aio.read_umi_tools(tmp_path / "u.tsv.gz", dtype=dtype)
    theirs = anndata.io.read_umi_tools(tmp_path / "u.tsv.gz", dtype=dtype)
    assert_equal(ours, theirs, exact=True)


def test_umi_tools_wrong_columns(tmp_path):
    (tmp_path / "u.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(FormatError, match=r"missing column\(s\) \['cell', 'count', 'gene'\]"):
        aio.read_umi_tools(tmp_path / "u.tsv")


def test_missing_extra_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "openpyxl", None)  # makes `import openpyxl` fail
    with pytest.raises(annio.errors.MissingDependencyError, match=r"read_excel needs .*pip install 'annio\[formats\]'"):
        aio.read_excel(tmp_path / "x.xlsx", 0)


def test_top_level_warning_classes():
    for name in ("OldFormatWarning", "ImplicitModificationWarning", "ExperimentalFeatureWarning", "WriteWarning"):
        assert name in annio.__all__ and issubclass(getattr(annio, name), UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert annio.WriteWarning is annio.errors.WriteWarning
