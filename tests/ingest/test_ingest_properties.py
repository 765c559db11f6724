"""Property: whatever mix of files a tree holds, every file is counted exactly once."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from images import bad_samples, rgb_png
from visionloop.catalog import Catalog, sqlite_url_for
from visionloop.ingest import IngestOptions, ingest
from visionloop.storage import Filesystem

BAD = [sample.data for sample in bad_samples()]
# A file is (kind, value): a good image with a content seed (seeds repeat to make duplicates),
# or one of the bad samples.
files = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.integers(0, 6)), st.tuples(st.just("bad"), st.integers(0, len(BAD) - 1))
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=files, batch_size=st.integers(1, 5), workers=st.integers(1, 3))
def test_every_file_is_added_unchanged_or_rejected(
    files: list[tuple[str, int]], batch_size: int, workers: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        for index, (kind, value) in enumerate(files):
            data = rgb_png(8, 8, seed=value) if kind == "good" else BAD[value]
            (root / f"{index % 3}" / f"f{index}").parent.mkdir(exist_ok=True)
            (root / f"{index % 3}" / f"f{index}").write_bytes(data)
        options = IngestOptions(batch_size=batch_size, workers=workers)
        with Catalog.open(sqlite_url_for(Path(tmp) / "c.db")) as catalog:
            first = ingest(catalog, Filesystem(str(root)), options)
            second = ingest(catalog, Filesystem(str(root)), options)
            items = catalog.count_items()

    distinct_good = len({value for kind, value in files if kind == "good"})
    n_good = sum(kind == "good" for kind, _ in files)
    for report in (first, second):
        assert report.seen == len(files)
        assert report.added + report.unchanged + report.rejected == report.seen
        assert report.rejected == len(files) - n_good == len(report.rejections)
    assert first.added == distinct_good == items
    assert first.duplicates == n_good - distinct_good
    assert (second.added, second.unchanged) == (0, n_good)
