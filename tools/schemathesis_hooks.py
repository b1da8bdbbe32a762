"""Schemathesis hooks for tools/fuzz_api.sh: bodies for the media types it cannot make itself.

`POST /v1/clearing/batches` takes JSON Lines (application/x-ndjson): a batch header line, then
record lines. The strategy mixes well-formed headers (gates of several cities, odd IDs) with
arbitrary lines and arbitrary bytes, so both the parser and the checks behind it are reached.
"""

import json

import schemathesis
from hypothesis import strategies as st

_header = st.builds(
    lambda batch_id, gate, operator: json.dumps({"batch_id": batch_id, "gate": gate, "operator": operator}),
    st.text(max_size=70),
    st.sampled_from(["1000000C0001", "1000FFFF0002", "2000000C0001", "10000000", "not hex"]),
    st.text(max_size=70),
)
_line = st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.text(max_size=20), st.one_of(st.integers(), st.text(max_size=30)), max_size=8).map(json.dumps),
)
_batch = st.builds(lambda header, lines: "\n".join([header, *lines]).encode(), _header, st.lists(_line, max_size=6))

schemathesis.openapi.media_type("application/x-ndjson", st.one_of(_batch, st.binary(max_size=300)))
