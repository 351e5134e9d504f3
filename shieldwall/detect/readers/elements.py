"""Several values on one line for a single-valued STIX path: every one is matched.

A Zeek line can name several values where a STIX object holds one: the SANs of an x509
certificate (`san.dns` -> `domain-name:value`), the hosts a file came from (`tx_hosts` ->
`network-traffic:src_ref.value`), the certificates of a TLS chain (`cert_chain_fps` ->
`x509-certificate:hashes.'SHA-256'`), an HTTP request's URL and its referrer (`url:value`).
The readers give the line's first value to its row, as before, and each further value a row
of its own (`spread`): the line's time and line number, that one value, nothing else. Each row
is then a well-formed observation for the index, the exact evaluator, the explanation and the
retro-hunt's Parquet (every column keeps one type, so stored days still read as one table),
and `Observations.event` says which rows are one line, so a line counts once in a sighting
however many of its values hit.

Why rows and not list columns: a list on `domain-name:value` would make the column a list in
x509.log and a string in http.log (two types for one stored column), and the exact evaluator
would need one object built per element anyway. A further value shares no row with another
path's values, so no pairing is invented that the log did not state (tx_hosts x rx_hosts).

All of it is columnar: Arrow's list kernels and numpy over whole columns, no loop per line.
Rows added = values beyond the first, so a line's cost stays linear in its size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.readers.base import LINE, TS, canonical_column

# Further values of one path: (row each belongs to, the values).
More = tuple[Any, pa.Array]

# The host of an absolute URL (scheme://[user@]host[:port]...), for a referrer's domain.
_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*://"
_URL_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(?P<h>\[[^\]/]*\]|[^/?#:\[\]]+)"


def is_list(arr: Any) -> bool:
    return pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)


def _flat(arr: pa.Array | pa.ChunkedArray) -> tuple[Any, pa.Array]:
    """(row of each value, the non-null values) of a string or list-of-string column."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if is_list(arr):
        parents = pc.list_parent_indices(arr).to_numpy()
        values = pc.list_flatten(arr)
    else:
        parents = np.arange(len(arr), dtype=np.int64)
        values = arr
    if values.null_count:
        ok = values.is_valid()
        parents = parents[np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)]
        values = values.filter(ok)
    return parents.astype(np.int64), values.cast(pa.string())


def values_of(sources: list[Any], n: int) -> tuple[pa.Array, More | None]:
    """One single-valued path's values from its sources (string or list columns, in the
    order their fields are mapped): the first value of each row, and the further ones.

    A further value equal to its row's first is dropped (a referrer to the same page, a
    field repeated under two names)."""
    if not any(is_list(s) for s in sources):
        base = sources[0] if len(sources) == 1 else pc.coalesce(*sources)
        if len(sources) == 1:
            return _combined(base), None
        rows, vals = [], []
        for i, s in enumerate(sources):
            keep = pc.and_(s.is_valid(), pc.fill_null(pc.not_equal(s, base), False))
            for earlier in sources[:i]:
                keep = pc.and_(keep, pc.invert(pc.fill_null(pc.equal(s, earlier), False)))
            pos = np.flatnonzero(np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool))
            if len(pos):
                rows.append(pos)
                vals.append(_combined(s).take(pa.array(pos)))
        if not rows:
            return _combined(base), None
        return _combined(base), (np.concatenate(rows), pa.concat_arrays(vals))
    flats = [_flat(s) for s in sources]
    parents = np.concatenate([p for p, _ in flats])
    values = pa.concat_arrays([v for _, v in flats])
    order = np.argsort(parents, kind="stable")  # each row's values in the order mapped
    parents = parents[order]
    values = values.take(pa.array(order))
    first = np.ones(len(parents), dtype=bool)
    first[1:] = parents[1:] != parents[:-1]
    at = np.full(n, -1, dtype=np.int64)
    at[parents[first]] = np.flatnonzero(first)
    base = values.take(pa.array(at, mask=at < 0))
    rest = np.flatnonzero(~first)
    if not len(rest):
        return base, None
    more_rows = parents[rest]
    more_vals = values.take(pa.array(rest))
    differs = pc.fill_null(pc.not_equal(more_vals, base.take(pa.array(more_rows))), True)
    keep = np.asarray(differs.to_numpy(zero_copy_only=False), dtype=bool)
    if not keep.any():
        return base, None
    return base, (more_rows[keep], more_vals.filter(pa.array(keep)))


def lists_of(sources: list[Any], n: int) -> pa.Array:
    """A list-valued path (`to_refs[*]`) from several sources: each row's values joined, in
    the order their fields are mapped (the envelope's recipients, then the To header's)."""
    if len(sources) == 1 and is_list(sources[0]):
        return _combined(sources[0])
    return lists_from_flat([_flat(s) for s in sources], n)


def lists_from_flat(parts: list[tuple[Any, Any]], n: int, unique: bool = False) -> pa.Array:
    """One list per row from (row of each value, values) parts, in the order of the parts
    (nulls left out; an empty row is null); `unique` keeps a row's first of equal values."""
    parents = np.concatenate([np.asarray(p, dtype=np.int64) for p, _ in parts])
    values = pa.concat_arrays([_combined(v).cast(pa.string()) for _, v in parts])
    if values.null_count:
        ok = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        parents, values = parents[ok], values.filter(pa.array(ok))
    order = np.argsort(parents, kind="stable")
    parents = parents[order]
    values = values.take(pa.array(order, pa.int64()))
    if unique and len(values):
        enc = values.dictionary_encode()
        ids = enc.indices.to_numpy().astype(np.int64)
        _, first = np.unique(parents * (len(enc.dictionary) + 1) + ids, return_index=True)
        first.sort()
        parents, values = parents[first], values.take(pa.array(first))
    counts = np.bincount(parents, minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))


def _combined(arr: Any) -> Any:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def url_hosts(urls: Any) -> pa.Array:
    """The canonical host name of each absolute URL (null for anything else): a referrer's
    domain, matched by `domain-name:value` indicators like the request's own host.

    Split at `/` rather than one regular expression with a capture group (RE2 captures
    cost ~2 us a URL: 0.7 s of a 300,000-line http log against ~0.05 s); only the rare
    host part holding `@ ? # : [` (credentials, a port, an IPv6 literal) goes through the
    expression."""
    urls = _combined(urls)
    absolute = pc.fill_null(pc.match_substring_regex(urls, _SCHEME), False)
    parts = pc.split_pattern(pc.if_else(absolute, urls, "x//"), "/", max_splits=3)
    hosts = pc.if_else(absolute, pc.list_element(parts, 2), pa.scalar(None, pa.string()))
    odd = pc.fill_null(pc.match_substring_regex(hosts, r"[@?#:\[]"), False)
    pos = np.flatnonzero(np.asarray(odd.to_numpy(zero_copy_only=False), dtype=bool))
    if len(pos):
        found = pc.struct_field(pc.extract_regex(urls.take(pa.array(pos)), _URL_HOST), [0])
        found = pc.if_else(pc.starts_with(found, "["), pa.scalar(None, pa.string()), found)
        mask = np.zeros(len(hosts), dtype=bool)
        mask[pos] = True
        hosts = pc.replace_with_mask(hosts, pa.array(mask), found.cast(pa.string()))
    hosts = pc.if_else(pc.equal(hosts, ""), pa.scalar(None, pa.string()), hosts)
    return canonical_column("domain-name:value", hosts)


def assemble(sources: dict[str, list[Any]], n: int) -> tuple[dict[str, Any], dict[str, More]]:
    """Columns of one batch from each path's sources, and the further values to `spread`."""
    cols: dict[str, Any] = {}
    more: dict[str, More] = {}
    for path, srcs in sources.items():
        if "[*]" in path:
            cols[path] = lists_of(srcs, n)
            continue
        if not pa.types.is_string(srcs[0].type) and not is_list(srcs[0]):
            cols[path] = srcs[0] if len(srcs) == 1 else pc.coalesce(*srcs)  # numbers
            continue
        cols[path], extra = values_of(srcs, n)
        if extra is not None:
            more[path] = extra
    return cols, more


def spread(table: pa.Table, more: dict[str, More]) -> tuple[pa.Table, Any]:
    """`table` with a row after its own for each further value (time, line number and that
    value), and for each row the row of the line it belongs to (`Observations.event`; None
    when no row was added)."""
    if not more:
        return table, None
    n = table.num_rows
    parts = [table]
    event = [np.arange(n, dtype=np.int64)]
    ts, line = table.column(TS), table.column(LINE)
    for path, (rows, values) in more.items():
        idx = pa.array(rows, pa.int64())
        extra = {TS: ts.take(idx), LINE: line.take(idx), path: values}
        parts.append(pa.table({name: extra.get(name, pa.nulls(len(rows), table.schema.field(
            name).type)) for name in table.column_names}, schema=table.schema))
        event.append(np.asarray(rows, dtype=np.int64))
    return pa.concat_tables(parts), np.concatenate(event)
